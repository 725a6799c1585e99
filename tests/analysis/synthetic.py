"""Synthetic run records in the real layout (for the analysis tests and its benchmark)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from pipo.cell import SIGNATURE_VERSION
from pipo.records import RunRecord

MODELS = {"qwen3_4b_base": "Qwen/Qwen3-4B-Base", "qwen3_8b_base": "Qwen/Qwen3-8B-Base", "qwen3_8b": "Qwen/Qwen3-8B"}
SPLITS = {
    "math": {"toy_math500": ("MATH500", 500), "toy_aime25": ("AIME25", 27), "toy_amc23": ("AMC23", 40),
             "toy_minerva": ("Minerva", 272), "toy_olympiad": ("OlympiadBench", 675)},
    "code": {"toy_taco": ("TACO", 1000), "toy_lcb": ("LCBv6", 175), "toy_humaneval": ("HumanEval", 164),
             "toy_mbpp": ("MBPP", 500)},
    "tool": {"toy_rlla": ("RLLA", 80), "toy_bfcl": ("BFCL", 1000), "toy_apibank": ("APIBank", 400)},
    "sciknoweval": {"toy_biology": ("Biology", 50), "toy_chemistry": ("Chemistry", 210),
                    "toy_material": ("Material", 94), "toy_physics": ("Physics", 80)},
}  # fmt: skip


def config(
    model="qwen3_4b_base",
    task="math",
    algorithm="grpo",
    pipo=True,
    lam=0.1,
    window=8,
    seed=42,
    scale="tiny",
    noise=0.0,
    preset="paper",
    recipe="paper",
    performance=None,
):
    splits = SPLITS[task]
    return {
        "scale": {"name": scale, "steps": 100},
        "algorithm": {"name": algorithm},
        "pipo": {
            "enabled": pipo,
            "lam": lam,
            "window": window,
            "preset": preset,
            # as conf/pipo/{on,authors}.yaml unless given
            "performance": performance or ("trained" if preset == "authors" else "verifier"),
        },
        "recipe": recipe,
        "model": {"name": model, "hf_id": MODELS[model]},
        "task": {
            "name": task,
            "benchmarks": [b for b, _ in splits.values()],
            "standin": {"splits": {s: {"stands_for": b, "size": n} for s, (b, n) in splits.items()}},
            "reward_noise": noise,
        },
        "seed": seed,
    }


def evaluation(step: int, task: str, correct: dict[str, int], rng: random.Random | None = None) -> dict:
    """One evaluation with these counts; with ``rng``, also per-problem outcomes that add up to them."""
    benches = {}
    for split, (bench, n) in SPLITS[task].items():
        c = correct[split]
        benches[split] = {"stands_for": bench, "n": n, "correct": c, "pass@1": c / n}
        if rng is not None:
            scores = [1.0] * c + [0.0] * (n - c)
            rng.shuffle(scores)
            benches[split]["per_problem"] = {str(i): x for i, x in enumerate(scores)}
    return {
        "step": step,
        "benchmarks": benches,
        "avg": {"pass@1": sum(b["pass@1"] for b in benches.values()) / len(benches)},
    }


def write_record(
    root: Path, sig: str, cfg: dict, evals: list[dict], state: str = "done", metrics: list[dict] | None = None
) -> RunRecord:
    rec = RunRecord(Path(root) / cfg["scale"]["name"] / sig)
    rec.path.mkdir(parents=True, exist_ok=True)
    rec.write_cell(cfg, sig, f"synthetic {sig}", SIGNATURE_VERSION)
    rec.set_status(state, step=evals[-1]["step"] if evals else 0)
    rec.write_json("eval.json", {"record_version": 1, "evals": evals})
    if metrics is not None:
        (rec.path / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    return rec


def random_counts(task: str, rng: random.Random) -> dict[str, int]:
    return {split: rng.randint(0, n) for split, (_, n) in SPLITS[task].items()}


def random_metrics(steps: int, rng: random.Random) -> list[dict]:
    return [
        {"step": s, "critic/score/mean": rng.random(), "response_length/mean": 10 + rng.random(),
         "timing/step": 0.3 + 0.1 * rng.random(), "pipo/J": rng.random(), "pipo/mu": 0.5, "pipo/sigma": 0.1,
         "pipo/delta": rng.gauss(0, 1), "pipo/phi": rng.gauss(0, 1)}
        for s in range(1, steps + 1)
    ]  # fmt: skip


def sweep_records(
    root: Path,
    name: str,
    accuracy: Callable[[dict, int], float] | None = None,
    seeds: tuple[int, ...] = (6, 42),
    steps: tuple[int, ...] = (0, 25, 50),
    seed: int = 0,
) -> int:
    """A done record, with per-problem outcomes and per-step metrics, for every cell of sweep ``name``'s
    grid (each of ``seeds`` where the grid chooses none). ``accuracy(cell attributes, step)`` is each
    benchmark's fraction correct (default: drawn at random). Returns how many records it wrote."""
    from analysis.tables import expected_cells
    from pipo.sweeps import load_sweep

    rng = random.Random(seed)
    written = 0
    for cell in expected_cells(load_sweep(name)):
        keys = ("model", "task", "algorithm", "pipo", "noise", "recipe", "lam", "window", "preset")
        cfg_args = {k: cell[k] for k in keys if k in cell}
        for s in [cell["seed"]] if "seed" in cell else seeds:
            evals = []
            for step in steps:
                frac = accuracy({**cell, "seed": s}, step) if accuracy else None
                correct = {
                    split: min(n, max(0, round(n * frac))) if frac is not None else rng.randint(0, n)
                    for split, (_, n) in SPLITS[cell["task"]].items()
                }
                evals.append(evaluation(step, cell["task"], correct, rng))
            cfg = config(**cfg_args, seed=s)
            if "control" in cell:  # a control twin is its own run (tables tell the two apart)
                cfg["pipo"]["control"] = cell["control"]
            write_record(root, f"{name}-{written:04d}", cfg, evals, metrics=random_metrics(steps[-1], rng))
            written += 1
    return written
