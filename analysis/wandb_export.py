"""Export a W&B project's runs into local run records, so the analysis reads them like its own.

Each W&B run (id = the cell's signature, config = the cell's config) becomes
``<cache>/<entity>/<project>/<scale>/<id>/`` with ``cell.yaml``, ``status.json``, ``eval.json``
(rebuilt from the logged ``val/<split>/correct`` and ``val/<split>/n``, with the per-problem outcomes of
the ``eval.json`` the run saved, where it has one) and ``metrics.jsonl``.
History is fetched one key at a time; rate-limited or failed calls are retried a bounded number
of times with backoff. A finished run already exported is not fetched again.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pipo.cell import SIGNATURE_VERSION
from pipo.records import RunRecord

log = logging.getLogger(__name__)
T = TypeVar("T")
METRIC_KEYS = (
    "critic/score/mean",
    "response_length/mean",
    "timing/step",
    "pipo/J",
    "pipo/mu",
    "pipo/sigma",
    "pipo/delta",
    "pipo/phi",
    "pipo/verified",
    "pipo/J_se",  # the feedback analysis (analysis/feedback.py)
    "probe/score",
    "probe/se",
)


def with_retries(call: Callable[[], T], attempts: int = 5, backoff_s: float = 2.0, sleep=time.sleep) -> T:
    """``call()``, retried on failure (rate limits included) up to ``attempts`` times, backing off."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as err:
            if attempt == attempts:
                raise
            wait = backoff_s * 2 ** (attempt - 1)
            log.warning("W&B call failed (%s); retry %d/%d in %.0fs", err, attempt, attempts - 1, wait)
            sleep(wait)
    raise AssertionError("unreachable")


def _history(run: Any, key: str) -> list[dict]:
    """``[{"_step": s, key: v}, ...]`` for one key (W&B's scan_history, with its own paging)."""
    return [row for row in run.scan_history(keys=["_step", key]) if row.get(key) is not None]


def saved_outcomes(run: Any) -> dict[int, dict[str, dict]]:
    """step → split → per-problem outcomes, from the ``eval.json`` the run saved (empty if it has none)."""
    try:
        with tempfile.TemporaryDirectory() as tmp, run.file("eval.json").download(root=tmp, replace=True) as f:
            evals = json.load(f).get("evals", [])
    except Exception as err:  # noqa: BLE001 - older runs saved no file: counts only
        log.info("W&B run %s: no saved eval.json (%s); per-problem outcomes unavailable", run.id, err)
        return {}
    return {
        int(e["step"]): {s: b["per_problem"] for s, b in e["benchmarks"].items() if "per_problem" in b}
        for e in evals
        if isinstance(e, dict) and "step" in e and isinstance(e.get("benchmarks"), dict)
    }


def export_run(run: Any, root: Path, sleep=time.sleep) -> Path | None:
    """Write one W&B run as a run record under ``root``; None (with a warning) if it is not a cell."""
    config = dict(run.config)
    try:
        scale = config["scale"]["name"]
        splits = (
            config["task"]["standin"]["splits"]
            if scale == "tiny"
            else {b: {"stands_for": b} for b in config["task"]["benchmarks"]}
        )
    except (KeyError, TypeError):
        log.warning("W&B run %s has no cell config; skipped", run.id)
        return None
    rec = RunRecord(root / scale / run.id)
    state = {"finished": "done", "running": "running"}.get(run.state, "failed")
    status = rec.status() or {}
    if status.get("state") == "done" and state == "done":
        return rec.path  # exported before, and it cannot change any more
    rec.path.mkdir(parents=True, exist_ok=True)
    rec.write_cell(config, run.id, run.name, SIGNATURE_VERSION)
    evals: dict[int, dict] = {}
    for split, spec in splits.items():
        for field in ("correct", "n"):
            rows = with_retries(lambda split=split, field=field: _history(run, f"val/{split}/{field}"), sleep=sleep)
            for row in rows:
                bench = evals.setdefault(int(row["_step"]), {}).setdefault(split, {"stands_for": spec["stands_for"]})
                bench[field] = row[f"val/{split}/{field}"]
    complete = []
    outcomes = saved_outcomes(run)
    for step, benches in sorted(evals.items()):
        if all("correct" in b and "n" in b for b in benches.values()) and len(benches) == len(splits):
            for split, b in benches.items():
                b["pass@1"] = b["correct"] / b["n"]
                if split in outcomes.get(step, {}):
                    b["per_problem"] = outcomes[step][split]
            avg = sum(b["pass@1"] for b in benches.values()) / len(benches)
            complete.append({"step": step, "benchmarks": benches, "avg": {"pass@1": avg}})
    rec.write_evals(complete)
    metrics: dict[int, dict] = {}
    for key in METRIC_KEYS:
        for row in with_retries(lambda key=key: _history(run, key), sleep=sleep):
            metrics.setdefault(int(row["_step"]), {"step": int(row["_step"])})[key] = row[key]
    rec.write_metrics([metrics[s] for s in sorted(metrics)])
    step = max(metrics, default=0)
    rec.write_json("status.json", {"state": state, "step": step, "source": "wandb"})
    return rec.path


def export(
    entity: str, project: str, cache: str | Path = ".cache/wandb_export", api: Any = None, sleep=time.sleep
) -> Path:
    """Export every run of ``entity/project``; returns the folder to read them from (as ``--root``)."""
    if api is None:
        import wandb

        api = wandb.Api(timeout=60)
    root = Path(cache) / entity / project
    runs = with_retries(lambda: list(api.runs(f"{entity}/{project}")), sleep=sleep)
    for run in runs:
        export_run(run, root, sleep)
    print(f"W&B {entity}/{project}: {len(runs)} runs exported to {root}")
    return root
