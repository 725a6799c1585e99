"""Load run records (``runs/<scale>/<signature>/``) into one tidy DataFrame."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import yaml

log = logging.getLogger(__name__)
RECORD_VERSION = 1  # the record layout this loader reads (pipo.records.RECORD_VERSION)


def load_runs(root: str | Path = "runs") -> pd.DataFrame:
    """One row per readable run: identity, cell settings, status and the last evaluation.

    A record that cannot be read (half-written, another record version) is reported and skipped.
    """
    rows = []
    for cell_file in sorted(Path(root).glob("*/*/cell.yaml")):
        path = cell_file.parent
        try:
            cell = yaml.safe_load(cell_file.read_text(encoding="utf-8"))
            if cell.get("record_version") != RECORD_VERSION:
                raise ValueError(f"record version {cell.get('record_version')} (this loader reads {RECORD_VERSION})")
            cfg = cell["config"]
            status = json.loads((path / "status.json").read_text()) if (path / "status.json").exists() else {}
            evals = json.loads((path / "eval.json").read_text())["evals"] if (path / "eval.json").exists() else []
        except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as err:
            log.warning("skipping unreadable run %s: %s", path, err)
            continue
        row = {
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
        }
        if evals:
            last = evals[-1]
            row["eval_step"] = last["step"]
            row.update({b: e["pass@1"] for b, e in last["benchmarks"].items()})
            row["AVG"] = last["avg"]["pass@1"]
            row["base_AVG"] = evals[0]["avg"]["pass@1"] if evals[0]["step"] == 0 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)
