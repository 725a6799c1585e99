"""Scoring speed: ``python -m pipo.tasks.score --task math`` on 10,000 rows (bar: ≤ 30 s).

    python tests/bench/score_math.py [--rows 10000]

Rows mix what a model writes: right and wrong boxed answers in equivalent forms (fractions,
decimals, LaTeX), a new number on every row, unboxed text and garbage. Prints the wall time of
the CLI in a fresh process.
"""

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time


def pair(rng: random.Random) -> tuple[str, str]:
    """(a model's answer, the ground truth): distinct numbers on every row, so no cache helps."""
    a, b = rng.randrange(1, 10_000), rng.choice([2, 4, 5, 8, 10, 20, 25])
    return rng.choice([
        (f"\\frac{{{2 * a}}}{{{2 * b}}}", f"\\frac{{{a}}}{{{b}}}"),  # equivalent fractions
        (f"{a / b:g}", f"\\frac{{{a}}}{{{b}}}"),  # decimal vs fraction
        (str(a), str(a)),
        (str(a), str(a + 1)),
        (f"{a}\\sqrt{{2}}", f"\\sqrt{{{2 * a * a}}}"),
        (f"x^2+{a}", f"{a}+x^2"),
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    rng = random.Random(0)
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for i in range(args.rows):
            answer, truth = pair(rng)
            kind = rng.random()
            if kind < 0.7:
                response = f"Step {i}: we compute ... so the answer is \\boxed{{{answer}}}."
            elif kind < 0.9:
                response = f"The answer is {answer}."
            else:
                response = "".join(rng.choice("\\{}$^_ab12") for _ in range(40))
            f.write(json.dumps({"response": response, "ground_truth": truth}) + "\n")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "pipo.tasks.score", "--task", "math", f.name, "-o", "/dev/null"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    seconds = time.perf_counter() - start
    print(out.stderr.strip().splitlines()[-1])
    print(f"{args.rows} math rows scored in {seconds:.1f} s ({args.rows / seconds:.0f} rows/s; bar: 10,000 in ≤ 30 s)")


if __name__ == "__main__":
    main()
