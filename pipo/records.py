"""Run records: ``cell.yaml``, ``metrics.jsonl``, ``eval.json``, ``status.json`` and ``ckpt/``.

The local record is the source of truth (W&B mirrors it). Whole files are written atomically
(temp file, then rename); ``metrics.jsonl`` is appended line by line and cut back to the last
checkpoint on resume, so a crash never leaves a record that disagrees with its checkpoint.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

RECORD_VERSION = 1
STATES = ("running", "done", "incomplete", "failed")  # incomplete: ended short of its budget (verl's data ran out)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser where there is one: ~10× faster


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSONL file; a torn last line (crash mid-write) is dropped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


class RunRecord:
    """The record of one cell, in its run directory."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.ckpt_dir = self.path / "ckpt"

    # -- whole files -------------------------------------------------------------------------
    def write_json(self, name: str, obj: Any) -> None:
        atomic_write_text(self.path / name, json.dumps(obj, indent=2, sort_keys=True) + "\n")

    def read_json(self, name: str) -> Any:
        f = self.path / name
        return json.loads(f.read_text(encoding="utf-8")) if f.exists() else None

    def write_cell(self, config: dict, signature: str, label: str, config_version: int) -> None:
        doc = {
            "record_version": RECORD_VERSION,
            "config_version": config_version,
            "signature": signature,
            "label": label,
            "config": config,
        }
        atomic_write_text(self.path / "cell.yaml", yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))

    def cell(self) -> dict:
        """``cell.yaml``: the cell's config, signature, label and versions.

        OSError if there is none, a YAML error if it does not parse, ValueError if it is not a record
        of this layout (not a mapping, or another ``record_version``).
        """
        doc = yaml.load((self.path / "cell.yaml").read_text(encoding="utf-8"), Loader=_LOADER)
        if not isinstance(doc, dict):
            raise ValueError("cell.yaml is not a mapping")
        if doc.get("record_version") != RECORD_VERSION:
            raise ValueError(f"record version {doc.get('record_version')} (this loader reads {RECORD_VERSION})")
        return doc

    def status(self) -> dict | None:
        return self.read_json("status.json")

    def set_status(self, state: str, **fields: Any) -> None:
        assert state in STATES, state
        old = self.status() or {}
        self.write_json(
            "status.json",
            {**old, **fields, "state": state, "host": socket.gethostname(), "pid": os.getpid(), "updated": time.time()},
        )

    # -- metrics -----------------------------------------------------------------------------
    def append_metrics(self, row: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def metrics(self) -> list[dict]:
        return read_jsonl(self.path / "metrics.jsonl")

    def write_metrics(self, rows: list[dict]) -> None:
        """Replace ``metrics.jsonl`` with ``rows`` (one JSON object a line)."""
        atomic_write_text(self.path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))

    def evals(self) -> list[dict]:
        return (self.read_json("eval.json") or {}).get("evals", [])

    def write_evals(self, evals: list[dict]) -> None:
        """Replace ``eval.json``'s evaluations with ``evals``."""
        self.write_json("eval.json", {"record_version": RECORD_VERSION, "evals": evals})

    def add_eval(self, entry: dict) -> None:
        self.add_evals([entry])

    def add_evals(self, entries: list[dict]) -> None:
        """Add evaluations to ``eval.json`` in one write; each replaces the one of its step, if any."""
        steps = {e["step"] for e in entries}
        evals = [e for e in self.evals() if e["step"] not in steps] + list(entries)
        self.write_evals(sorted(evals, key=lambda e: e["step"]))

    def pass_at_k(self, k: int) -> dict | None:
        """``pass_at_<k>.json``: the re-evaluation of the trained cell with pass@k (None if not done)."""
        return self.read_json(f"pass_at_{k}.json")

    def write_pass_at_k(self, k: int, result: dict) -> None:
        self.write_json(f"pass_at_{k}.json", result)

    def rewind(self, step: int) -> None:
        """Drop metrics and evaluations after ``step`` (the checkpoint a resumed run starts from)."""
        self.write_metrics([r for r in self.metrics() if r.get("step", 0) <= step])
        self.write_evals([e for e in self.evals() if e["step"] <= step])
