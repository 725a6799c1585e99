"""Does the warmed-up stand-in follow an in-context demonstration, as SDPO's self-teacher must?

    python tests/bench/sdpo_teacher.py [overrides...]      # default: the Table 3 model, model=qwen3_8b

Builds (or loads from the cache) the tiny base model of the cell and answers every evaluation
question of the multiple-choice stand-in greedily three ways: the plain question (the student, as
the base row sees it); SDPO's teacher prompt with the right answer as demonstration (the teacher);
and the teacher prompt with a wrong answer (does it copy what it is shown?). Printed per domain:
the student's accuracy, the teacher's accuracy with the right demonstration (SDPO needs it high:
docs/ALGORITHM.md, "The tiny testbed"), and the share of answers that copy the wrong one.
"""

import argparse
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from pipo.backends.local.rollout import generate
from pipo.config import compose_cell
from pipo.models import resolve_model
from pipo.tasks import get_verifier, load_standin


def answers(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy responses, one per prompt (the teacher prompt is longer than a question: no truncation)."""
    roll = generate(model, tokenizer, prompts, 1, 4 * max(map(len, prompts)), max_new_tokens, 1.0, greedy=True)
    return roll.responses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the cell (model=..., task=...)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = compose_cell(["model=qwen3_8b", "task=sciknoweval", "algorithm=sdpo", *args.overrides])
    start = time.perf_counter()
    data = load_standin(cfg.task)
    path = resolve_model(cfg.model, data, cfg.cache_dir)
    print(f"{cfg.model.name} stand-in: {path} (ready in {time.perf_counter() - start:.0f} s)")
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    verifier = get_verifier(cfg.task.eval_verifier or cfg.task.verifier)
    n_new = cfg.task.standin.max_response_length
    rows = []
    for name, problems in data.benchmarks.items():
        truths = [p["ground_truth"] for p in problems]
        shown_wrong = [letter(p["sloppy"]) for p in problems]
        plain = answers(model, tokenizer, [p["prompt"] for p in problems], n_new)
        right = answers(model, tokenizer, [data.reprompt(p["prompt"], p["solution"]) for p in problems], n_new)
        wrong = answers(model, tokenizer, [data.reprompt(p["prompt"], p["sloppy"]) for p in problems], n_new)
        scored = [verifier.many(plain, truths), verifier.many(right, truths), verifier.many(wrong, shown_wrong)]
        rows.append((name, len(problems), *(100 * sum(s) / len(problems) for s in scored)))
    print(f"{'split':16} {'n':>4} {'student':>8} {'teacher, right demo':>20} {'copies a wrong demo':>20}")
    for name, n, s, r, w in rows:
        print(f"{name:16} {n:4d} {s:7.1f}% {r:19.1f}% {w:19.1f}%")
    n = sum(r[1] for r in rows)
    pooled = [sum(r[1] * r[k] for r in rows) / n for k in (2, 3, 4)]
    print(f"{'all questions':16} {n:4d} {pooled[0]:7.1f}% {pooled[1]:19.1f}% {pooled[2]:19.1f}%")
    mean = [sum(r[k] for r in rows) / len(rows) for k in (2, 3, 4)]
    print(f"{'domain mean':16} {'':4} {mean[0]:7.1f}% {mean[1]:19.1f}% {mean[2]:19.1f}%   (the tables' AVG)")


def letter(response: str) -> str:
    """The letter of a reference response ``<answer>X</answer>``."""
    return response.removeprefix("<answer>").removesuffix("</answer>")


if __name__ == "__main__":
    main()
