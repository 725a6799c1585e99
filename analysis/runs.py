"""Load run records (``runs/<scale>/<signature>/``) into one tidy DataFrame."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import yaml

log = logging.getLogger(__name__)
RECORD_VERSION = 1  # the record layout this loader reads (pipo.records.RECORD_VERSION)


def load_run(path: str | Path) -> dict | None:
    """One run's identity, cell settings, status and evaluations; None (with a warning) if unreadable."""
    path = Path(path)
    try:
        cell = yaml.safe_load((path / "cell.yaml").read_text(encoding="utf-8"))
        if cell.get("record_version") != RECORD_VERSION:
            raise ValueError(f"record version {cell.get('record_version')} (this loader reads {RECORD_VERSION})")
        cfg = cell["config"]
        status = json.loads((path / "status.json").read_text()) if (path / "status.json").exists() else {}
        evals = json.loads((path / "eval.json").read_text())["evals"] if (path / "eval.json").exists() else []
        return {
            "signature": cell["signature"],
            "label": cell["label"],
            "scale": cfg["scale"]["name"],
            "algorithm": cfg["algorithm"]["name"],
            "pipo": cfg["pipo"]["enabled"],
            "model": cfg["model"]["name"],
            "task": cfg["task"]["name"],
            "seed": cfg["seed"],
            "state": status.get("state", "new"),
            "step": status.get("step", 0),
            "path": str(path),
            "evals": evals,
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError, yaml.YAMLError) as err:
        log.warning("skipping unreadable run %s: %s", path, err)
        return None


def to_row(run: dict) -> dict:
    """A flat row: identity, status and the last evaluation's per-benchmark Pass@1 and AVG."""
    row = {k: v for k, v in run.items() if k != "evals"}
    evals = run["evals"]
    if evals:
        last = evals[-1]
        row["eval_step"] = last["step"]
        row.update({b: e["pass@1"] for b, e in last["benchmarks"].items()})
        row["AVG"] = last["avg"]["pass@1"]
        row["base_AVG"] = evals[0]["avg"]["pass@1"] if evals[0]["step"] == 0 else float("nan")
    return row


def load_runs(root: str | Path = "runs", paths: list[Path] | None = None) -> pd.DataFrame:
    """One row per readable run under ``root`` (or at ``paths``); unreadable records are reported and skipped."""
    found = paths if paths is not None else sorted(p.parent for p in Path(root).glob("*/*/cell.yaml"))
    runs = [r for r in (load_run(p) for p in found if (Path(p) / "cell.yaml").exists()) if r is not None]
    return pd.DataFrame([to_row(r) for r in runs])
