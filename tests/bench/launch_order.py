"""The main job's idle tail under two launch orders: a model, not a measurement.

    python tests/bench/launch_order.py

Table 1's 16 cells in Hydra's order (the last axis fastest) from ``multirun_argvs``, with and without
the sweep's ``launch_first``, on two workers that each take the next cell when free (the joblib
launcher, ``batch_size: 1``); the first cell of a model builds it, a later one waits for the build.
Cell costs: the per-step seconds of BENCHMARKS.md §1 (4B, PIPO off / on) × 100 steps + 7.5 s of
evaluations and start-up, × 1.4 for the 8B stand-in; builds 98 s (4B) and 89 s (8B), side by side
in the main job at b620fab. Prints when the last cell ends and how long one core idles at the end.
"""

from __future__ import annotations

import dataclasses
import itertools

from pipo.sweeps import load_sweep, multirun_argvs

STEP_S = {  # (algorithm, pipo) -> seconds per step, BENCHMARKS.md §1 (base s, PIPO on s)
    ("ppo", "off"): 0.381, ("ppo", "on"): 0.511, ("grpo", "off"): 0.259, ("grpo", "on"): 0.337,
    ("gspo", "off"): 0.256, ("gspo", "on"): 0.326, ("dapo", "off"): 0.332, ("dapo", "on"): 0.450,
}  # fmt: skip
BUILD_S = {"qwen3_4b_base": 98.0, "qwen3_8b_base": 89.0}
WIDER = {"qwen3_4b_base": 1.0, "qwen3_8b_base": 1.4}


def cell_seconds(cell: dict[str, str]) -> float:
    return (100 * STEP_S[cell["algorithm"], cell["pipo"]] + 7.5) * WIDER[cell["model"]]


def launched(argv: list[str]) -> list[dict[str, str]]:
    axes = [a.split("=", 1) for a in argv[1:] if "=" in a and not a.startswith("sweep=")]
    return [
        dict(zip([k for k, _ in axes], combo, strict=True))
        for combo in itertools.product(*(v.split(",") for _, v in axes))
    ]


def schedule(cells: list[dict[str, str]], workers: int = 2) -> tuple[float, float]:
    free, built = [0.0] * workers, {}
    for cell in cells:
        w = min(range(workers), key=free.__getitem__)
        start = free[w]
        if cell["model"] not in built:
            built[cell["model"]] = start + BUILD_S[cell["model"]]
        free[w] = max(start, built[cell["model"]]) + cell_seconds(cell)
    return max(free), max(free) - min(free)


def main() -> None:
    sweep = load_sweep("table1")
    for name, s in (("grid order", dataclasses.replace(sweep, launch_first={})), ("launch_first", sweep)):
        (argv,) = multirun_argvs(s, [])
        end, idle = schedule(launched(argv))
        print(f"{name:<14} last cell ends at {end:5.0f} s; one core idle for the last {idle:4.0f} s")


if __name__ == "__main__":
    main()
