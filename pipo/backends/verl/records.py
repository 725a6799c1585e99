"""verl's ``file`` logger → the cell's run record, so the analysis reads verl runs like local ones.

Each attempt of a cell (first run, then every resume) logs to its own ``verl_log.<n>.jsonl`` in the
run directory (verl's file logger truncates its file on open). Rows are ``{"step", "data"}``; a later
attempt's row for a step replaces an earlier one (a resumed run repeats the steps after its checkpoint).
Scalar metrics go to ``metrics.jsonl`` (verl's names, which the local trainer shares, e.g.
``critic/score/mean``; ``timing_s/*`` also as ``timing/*``); each validation
(``val-core/<benchmark>/acc/mean@1``, the data source of a prepared benchmark row being the
benchmark's name) becomes an ``eval.json`` entry, with each problem's outcome from verl's validation dump
of that step (``validation/<step>.jsonl``, ``trainer.validation_data_dir``) where there is one. Both files
are written by the record itself (``pipo.records.RunRecord``: atomic writes), as the local trainer's are.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from pipo.records import RunRecord, read_jsonl

LOG_GLOB = "verl_log.*.jsonl"
VALIDATION_DIR = "validation"  # verl's trainer.validation_data_dir in the run directory: <step>.jsonl
VAL_KEY = re.compile(r"^val-core/(?P<source>.+)/acc/mean@1$")


def next_log_path(run_dir: Path) -> Path:
    """The log file of a new attempt (the files of earlier attempts are kept)."""
    return run_dir / f"verl_log.{len(_logs(run_dir))}.jsonl"


def _logs(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob(LOG_GLOB), key=lambda p: int(p.name.split(".")[1]))


def per_problem(dump: Path, benchmarks: list[str]) -> dict[str, dict[str, float]]:
    """benchmark → {problem index: acc} from one validation dump; its rows carry the reward function's
    ``benchmark`` (a position in ``benchmarks``) and ``problem`` (pipo/backends/verl/reward.py)."""
    out: dict[str, dict[str, float]] = {}
    for row in read_jsonl(dump):
        b, i = (row.get("benchmark"), row.get("problem")) if isinstance(row, dict) else (None, None)
        if isinstance(b, int | float) and isinstance(i, int | float) and 0 <= b < len(benchmarks):
            out.setdefault(benchmarks[int(b)], {})[str(int(i))] = float(row.get("acc") or 0.0)
    return out


def import_logs(record: RunRecord, sizes: dict[str, int]) -> list[dict]:
    """Rewrite the record's metrics and evaluations from every attempt's log; returns the evaluations.

    ``sizes``: benchmark name → number of problems (its parquet's rows), for ``correct`` and ``n``.
    """
    rows: dict[int, dict] = {}
    for log in _logs(record.path):
        for row in read_jsonl(log):  # a torn last line (a killed attempt) is skipped
            if isinstance(row, dict) and isinstance(row.get("data"), dict) and isinstance(row.get("step"), int):
                rows[row["step"]] = {**rows.get(row["step"], {}), **row["data"]}
    metrics, evals = [], []
    for step in sorted(rows):
        data = rows[step]
        scalars = {k: v for k, v in data.items() if isinstance(v, int | float) and not VAL_KEY.match(k)}
        # verl times as timing_s/<what>; the analysis (Figure 5) reads the local trainer's timing/<what>
        scalars |= {"timing/" + k.removeprefix("timing_s/"): v for k, v in scalars.items() if k.startswith("timing_s/")}
        if scalars:
            metrics.append(
                {
                    "step": step,
                    **{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in scalars.items()},
                }
            )
        benchmarks = {}
        for key, value in data.items():
            match = VAL_KEY.match(key)
            if match and match["source"] in sizes:
                n = sizes[match["source"]]
                benchmarks[match["source"]] = {
                    "correct": float(value) * n,
                    "n": n,
                    "pass@1": float(value),
                    "stands_for": match["source"],
                }
        dump = record.path / VALIDATION_DIR / f"{step}.jsonl"
        if benchmarks and dump.exists():
            for name, outcomes in per_problem(dump, [k for k in sizes if k != "train"]).items():
                if name in benchmarks:
                    benchmarks[name]["per_problem"] = outcomes
        if benchmarks:
            avg = sum(b["pass@1"] for b in benchmarks.values()) / len(benchmarks)
            evals.append({"step": step, "benchmarks": benchmarks, "avg": {"pass@1": avg}})
    record.write_metrics(metrics)  # the record's own writers (pipo.records): atomic, one format
    if evals:
        record.add_evals(evals)
    return evals
