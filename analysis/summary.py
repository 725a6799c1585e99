"""A plain text summary of a sweep's cells: Pass@1 per benchmark and AVG, base-model rows first."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from analysis.runs import load_run


def summarize(paths: list[Path]) -> str:
    """The cells at ``paths`` as a table; cells with no record yet are listed as missing."""
    runs = [r for r in (load_run(p) for p in paths if (Path(p) / "cell.yaml").exists()) if r is not None]
    missing = len(paths) - len(runs)
    if not runs:
        return f"no records yet for the {len(paths)} cells of this sweep"
    rows = []
    base_seen = set()
    for run in runs:  # the untrained base model: the step-0 evaluation, identical for all cells of a model
        first = run["evals"][0] if run["evals"] else None
        if first and first["step"] == 0 and (run["model"], run["task"]) not in base_seen:
            base_seen.add((run["model"], run["task"]))
            rows.append(
                {
                    "model": run["model"],
                    "method": "Base Model",
                    "state": "",
                    **{b: e["pass@1"] for b, e in first["benchmarks"].items()},
                    "AVG": first["avg"]["pass@1"],
                }
            )
    for run in runs:
        last = run["evals"][-1] if run["evals"] else {"benchmarks": {}, "avg": {}}
        rows.append(
            {
                "model": run["model"],
                "method": run["algorithm"].upper() + ("+PIPO" if run["pipo"] else ""),
                "state": f"{run['state']} {run['step']}",
                **{b: e["pass@1"] for b, e in last["benchmarks"].items()},
                "AVG": last["avg"].get("pass@1", float("nan")),
            }
        )
    df = pd.DataFrame(rows).sort_values(["model"], kind="stable")
    text = df.to_string(index=False, float_format=lambda x: f"{100 * x:.1f}", na_rep="—")
    if missing:
        text += f"\n({missing} cells have no record yet)"
    return text


def summarize_pass_at_k(paths: list[Path], k: int) -> str:
    """Pass@k per benchmark and AVG of re-evaluated cells (``pass_at_<k>.json`` in their records)."""
    rows = []
    for path in paths:
        run = load_run(path)
        f = Path(path) / f"pass_at_{k}.json"
        if run is None or not f.exists():
            continue
        res = json.loads(f.read_text())
        rows.append(
            {
                "model": run["model"],
                "method": run["algorithm"].upper() + ("+PIPO" if run["pipo"] else ""),
                **{b: e[f"pass@{k}"] for b, e in res["benchmarks"].items()},
                "AVG": res["avg"][f"pass@{k}"],
            }
        )
    if not rows:
        return f"no pass@{k} results yet"
    return pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{100 * x:.1f}")
