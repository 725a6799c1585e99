"""Load run records (``runs/<scale>/<signature>/``) into tidy DataFrames.

A record that cannot be read — half written, from another record or config version, or not a run
at all — is reported in ``skipped`` and left out; it never stops the others from loading.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from pipo.cell import SIGNATURE_VERSION, settings_key
from pipo.records import RunRecord  # the one reader of the record layout (and its RECORD_VERSION)

log = logging.getLogger(__name__)
CONFIG_VERSION = SIGNATURE_VERSION  # runs of older versions are other cells: reported and skipped


def load_run(path: str | Path) -> dict:
    """One run's identity, cell settings, status and evaluations; ValueError says why it is unreadable."""
    path = Path(path)
    record = RunRecord(path)
    try:
        cell = record.cell()  # ValueError for another record layout
        if cell.get("config_version", 1) != CONFIG_VERSION:
            raise ValueError(f"config version {cell.get('config_version', 1)} (this loader reads {CONFIG_VERSION})")
        cfg = cell["config"]
        status = record.status() or {}
        evals = record.evals()
        return {
            "signature": cell["signature"],
            "settings": _settings(cfg),
            "label": cell["label"],
            "scale": cfg["scale"]["name"],
            "algorithm": cfg["algorithm"]["name"],
            "pipo": bool(cfg["pipo"]["enabled"]),
            "lam": float(cfg["pipo"]["lam"]),
            "window": int(cfg["pipo"]["window"]),
            "optimizer": cfg["pipo"].get("optimizer", "shared"),
            "control": cfg["pipo"].get("control", "none"),
            "performance": cfg["pipo"].get("performance", "verifier"),  # what J_t is: verifier | trained | probe
            "preset": cfg["pipo"].get("preset", "paper"),  # pipo=on (the paper's reading) | pipo=authors
            "recipe": cfg.get("recipe", "paper"),  # the base algorithms' settings: paper | authors
            "noise": float(cfg["task"].get("reward_noise", 0.0)),  # task.reward_noise of its training
            "model": cfg["model"]["name"],
            "hf_id": cfg["model"]["hf_id"],
            "task": cfg["task"]["name"],
            "benchmarks": list(cfg["task"]["benchmarks"]),
            "seed": int(cfg["seed"]),
            "state": status.get("state", "new"),
            "step": status.get("step", 0),
            "total_steps": int(cfg["scale"]["steps"]),
            "path": str(path),
            "evals": evals,
        }
    except (OSError, KeyError, TypeError, AttributeError, yaml.YAMLError, json.JSONDecodeError) as err:
        raise ValueError(f"{type(err).__name__}: {err}") from None


def _settings(cfg: dict) -> str | None:
    """The run's :func:`~pipo.cell.settings_key`; None for a config that lacks a part it hashes."""
    try:
        return settings_key(cfg)
    except (KeyError, TypeError, AttributeError):
        return None


@dataclass
class Runs:
    """The readable runs (one row each, ``evals`` kept as lists) and the records that were skipped."""

    frame: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def find_records(root: str | Path) -> list[Path]:
    return sorted(p.parent for p in Path(root).glob("*/*/cell.yaml"))


def load_runs(root: str | Path = "runs", paths: list[Path] | None = None) -> Runs:
    """Every readable run under ``root`` (or at ``paths``); the rest are reported in ``skipped``."""
    found = paths if paths is not None else find_records(root)
    rows, skipped = [], []
    for p in found:
        try:
            rows.append(load_run(p))
        except ValueError as err:
            skipped.append((str(p), str(err)))
            log.warning("skipping unreadable run %s: %s", p, err)
    return Runs(pd.DataFrame(rows), skipped)


def method_name(algorithm: str, pipo: bool) -> str:
    """``GRPO`` or ``GRPO+PIPO``, as the paper's tables name them."""
    return algorithm.upper() + ("+PIPO" if pipo else "")


def scores(runs: pd.DataFrame, which: str = "last") -> pd.DataFrame:
    """One row per (run, benchmark) of an evaluation: ``which`` = ``last`` or ``first`` (step 0).

    Columns: the run's identity, ``split`` (the evaluated split, a stand-in at tiny scale),
    ``benchmark`` (the paper benchmark it stands for), ``correct``, ``n`` and ``pass@1``.
    """
    out = []
    for run in runs.itertuples(index=False):
        if not run.evals:
            continue
        ev = run.evals[-1] if which == "last" else run.evals[0]
        if which == "first" and ev["step"] != 0:
            continue
        for split, e in ev["benchmarks"].items():
            out.append(
                {
                    "signature": run.signature,
                    "scale": run.scale,
                    "model": run.model,
                    "task": run.task,
                    "algorithm": run.algorithm,
                    "pipo": run.pipo,
                    "lam": run.lam,
                    "window": run.window,
                    "seed": run.seed,
                    "eval_step": ev["step"],
                    "split": split,
                    "benchmark": e.get("stands_for", split),
                    "correct": float(e["correct"]),
                    "n": int(e["n"]),
                }
            )
    df = pd.DataFrame(out)
    if not df.empty:
        df["pass@1"] = df["correct"] / df["n"]
    return df


def load_metrics(path: str | Path) -> pd.DataFrame:
    """A run's per-step metrics (``metrics.jsonl``; empty if none); a torn last line is ignored."""
    return pd.DataFrame(RunRecord(path).metrics())
