"""Runs that W&B logged on this machine (``wandb.mode=offline``, the default), read from W&B's own run files and
served to :mod:`analysis.wandb_export` through the part of the public API it uses (``api.runs``, ``run.config``,
``run.scan_history``, ``run.file(...).download``), so that they export like a synced W&B project.

The mirror leaves ``<record>/wandb/offline-run-<time>-<id>/run-<id>.wandb`` (W&B's transaction log: every record
the run sent) and, under ``files/``, what the run saved (``eval.json``). The log is read by W&B's own reader,
``wandb leet inspect --json`` (wandb-core's transaction-log reader: one JSON object per record). A resumed run has
one folder per attempt; they are read in order, and as the record rewinds on resume, a later attempt's rows replace
the earlier ones from its first logged step on (a synced run keeps the first values of a step logged twice instead).

What a local run file lacks beside a synced run: the state is read from the log's exit record (exit code 0:
finished; another: failed; none: "running", which a run killed without exiting looks like too: the server would
call it crashed), and the saved ``eval.json`` is a link to the record's own file, not a copy.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}  # how the log's JSON writes them


def read_run_file(path: Path) -> list[dict]:
    """Every record of the ``.wandb`` file ``path``, as ``wandb leet inspect --json`` prints them."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_ERROR_REPORTING": "false", "WANDB_SILENT": "true"}
    proc = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"W&B could not read its run file {path} (`wandb leet inspect --json`, wandb>=0.31): {proc.stderr.strip()}"
        )
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def _value(v: Any) -> Any:
    return NON_FINITE.get(v, v) if isinstance(v, str) else v


class SavedFile:
    """A file the run saved (``files/<name>`` of its folder), downloaded as the public API's ``File`` is."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def download(self, root: str | Path = ".", replace: bool = False) -> TextIO:
        target = Path(root) / self.path.name
        if target.exists() and not replace:
            raise ValueError(f"{target} exists (replace=False)")
        shutil.copyfile(self.path, target)  # follows the link to the record's file
        return open(target, encoding="utf-8")


class OfflineRun:
    """One run (every attempt of it: the folders of its run id, oldest first) in the public API's shape."""

    def __init__(self, folders: list[Path], logs: list[list[dict]]) -> None:
        self.folders = folders
        self.config: dict[str, Any] = {}
        self.rows: dict[int, dict[str, Any]] = {}
        self.id = self.name = self.project = self.group = None
        self.tags: list[str] = []
        self.state = "running"
        for records in logs:
            self.state = "running"  # until this attempt's exit record
            rows: dict[int, dict[str, Any]] = {}
            for rec in records:
                kind = rec.get("type")
                if kind == "run":
                    run = rec["run"]
                    self.id, self.project = run.get("run_id"), run.get("project")
                    self.name, self.group = run.get("display_name") or self.name, run.get("run_group") or self.group
                    self.tags = run.get("tags", self.tags)
                    self._configure(run.get("config", {}))
                elif kind == "config":
                    self._configure(rec["config"])
                elif kind == "history":
                    item = {k: _value(v) for k, v in rec["history"]["item"].items()}
                    step = int(item.get("_step", rec["history"].get("step", {}).get("num", 0)))
                    rows.setdefault(step, {}).update(item, _step=step)
                elif kind == "exit":
                    self.state = "finished" if rec["exit"].get("exit_code", 0) == 0 else "failed"
            if rows:  # a resume rewinds: its first step on, the earlier attempt's rows are replaced
                self.rows = {s: r for s, r in self.rows.items() if s < min(rows)} | rows
        if self.id is None:
            raise ValueError(f"{folders[0]}: no run record in its .wandb file")
        self.name = self.name or self.id

    def _configure(self, change: dict) -> None:
        self.config.update({k: v for k, v in change.get("update", {}).items() if not k.startswith("_")})
        for item in change.get("remove", []):
            self.config.pop(item.get("key") if isinstance(item, dict) else item, None)

    def scan_history(self, keys: list[str]) -> list[dict]:
        """The rows, in step order, that have every one of ``keys`` (only those keys)."""
        return [{k: r[k] for k in keys} for _, r in sorted(self.rows.items()) if all(k in r for k in keys)]

    def file(self, name: str) -> SavedFile:
        """The file ``name`` the run saved, from its latest attempt that has it (a dangling link counts as none)."""
        for folder in reversed(self.folders):
            if (folder / "files" / name).is_file():
                return SavedFile(folder / "files" / name)
        raise FileNotFoundError(f"run {self.id} saved no {name} under {self.folders[-1] / 'files'}")


def run_folders(root: Path) -> dict[str, list[Path]]:
    """Run id → its W&B run folders under ``root`` (``…/wandb/offline-run-<time>-<id>/`` or an online run's
    ``run-<time>-<id>/``), oldest first."""
    found: dict[str, set[Path]] = {}
    for log in Path(root).rglob("run-*.wandb"):
        folder = log.parent
        run_id = log.stem.removeprefix("run-")
        if folder.parent.name == "wandb" and folder.name.endswith(f"-{run_id}") and not folder.is_symlink():
            found.setdefault(run_id, set()).add(folder.resolve())
    return {i: sorted(f, key=lambda f: f.name.removeprefix("offline-")) for i, f in sorted(found.items())}


class OfflineApi:
    """``wandb.Api`` for the runs logged under a folder: ``runs("entity/project")`` lists that project's."""

    def __init__(self, root: str | Path, workers: int | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"no folder {self.root} (--root: where the run records and their wandb/ are)")
        self.workers = workers or min(8, os.cpu_count() or 1)

    def runs(self, path: str) -> list[OfflineRun]:
        project = path.split("/")[-1]
        folders = run_folders(self.root)
        files = [(f / f"run-{run_id}.wandb") for run_id, fs in folders.items() for f in fs]
        with ThreadPoolExecutor(self.workers) as pool:  # each read is a wandb-core process
            logs = dict(zip(files, pool.map(read_run_file, files), strict=True))
        runs = [OfflineRun(fs, [logs[f / f"run-{i}.wandb"] for f in fs]) for i, fs in folders.items()]
        return [r for r in runs if r.project == project]


def export_offline(root: str | Path, project: str = "pipo", cache: str | Path = ".cache/wandb_export") -> Path:
    """Export the runs of ``project`` logged under ``root`` (as :func:`analysis.wandb_export.export` exports a W&B
    project) into ``<cache>/offline-<root's name>-<hash of its path>/<project>``; returns that folder."""
    from analysis.wandb_export import export

    resolved = Path(root).resolve()
    label = f"offline-{resolved.name}-{hashlib.sha1(str(resolved).encode()).hexdigest()[:8]}"
    return export(label, project, cache, api=OfflineApi(root))
