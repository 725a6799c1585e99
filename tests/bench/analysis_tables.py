"""Analysis speed: every table from 1,000 synthetic run records of 500 steps each (bar: ≤ 3 s).

    python tests/bench/analysis_tables.py [--runs 1000] [--steps 500]

The records (real layout: cell.yaml, status.json, eval.json with an evaluation every 25 steps,
metrics.jsonl with one row per step) are spread over every table's cells, with several seeds.
Timed: loading the records and building every table in all its views and formats (figures,
which read the per-step metrics, are not part of the bar).
"""

import argparse
import itertools
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from analysis.render import write_table
from analysis.runs import load_runs
from analysis.tables import TableSpec, build_table
from pipo.sweeps import load_sweep
from tests.analysis.synthetic import config, evaluation, random_counts, random_metrics, write_record

TABLES = ("table1", "table2", "table3", "table4", "table6", "table7")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    rng = random.Random(0)
    kinds = list(itertools.product(
        [("qwen3_4b_base", "math"), ("qwen3_8b_base", "math"), ("qwen3_4b_base", "code"), ("qwen3_4b_base", "tool"),
         ("qwen3_8b", "sciknoweval")],
        ["ppo", "grpo", "gspo", "dapo", "sdpo"], [False, True], [0.0, 0.1, 0.5], [4, 8],
    ))  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        t = time.perf_counter()
        for i in range(args.runs):
            (model, task), algo, pipo, lam, window = kinds[i % len(kinds)]
            evals = [evaluation(s, task, random_counts(task, rng)) for s in range(0, args.steps + 1, 25)]
            cfg = config(model, task, algo, pipo, lam, window, seed=i // len(kinds))
            write_record(root, f"r{i:05d}", cfg, evals, metrics=random_metrics(args.steps, rng))
        print(f"wrote {args.runs} records of {args.steps} steps in {time.perf_counter() - t:.1f} s")
        start = time.perf_counter()
        runs = load_runs(root)
        loaded = time.perf_counter() - start
        files = 0
        for name in TABLES:
            sweep = load_sweep(name)
            table = build_table(name, sweep, TableSpec(**sweep.table), runs.frame, "tiny")
            files += len(write_table(table, Path(tmp) / "results"))
        total = time.perf_counter() - start
    print(f"loaded {len(runs.frame)} runs in {loaded:.2f} s; built {len(TABLES)} tables ({files} files) "
          f"in {total:.2f} s in all (bar: ≤ 3 s)")  # fmt: skip


if __name__ == "__main__":
    main()
