"""Mirror a run record to Weights & Biases (offline by default: no account needed).

W&B is a mirror: any failure to reach or use it is a warning, never a lost run.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger(__name__)


def _reachable(url: str, timeout_s: float = 3.0) -> bool:
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout_s):
            return True
    except OSError:
        return False


class WandbMirror:
    """``log``/``finish`` forward to a wandb run, or do nothing when W&B is disabled or broken."""

    def __init__(
        self,
        mode: str,
        project: str,
        entity: str | None,
        group: str | None,
        run_id: str,
        name: str,
        directory: Path,
        config: dict[str, Any],
        tags: list[str],
    ) -> None:
        self.run = None
        self.saved: set[Path] = set()
        if mode == "disabled":
            return
        if mode == "online" and not _reachable(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")):
            log.warning(
                "W&B: the server cannot be reached; logging offline instead (sync later with "
                "`wandb sync %s`). The local run record is complete either way.",
                directory / "wandb",
            )
            mode = "offline"
        try:
            import wandb

            directory.mkdir(parents=True, exist_ok=True)
            self.run = wandb.init(
                project=project,
                entity=entity,
                group=group,
                id=run_id,
                name=name,
                tags=tags,
                dir=str(directory),
                mode=mode,
                resume="allow",
                config=config,
                settings=wandb.Settings(silent=True, console="off", init_timeout=30),
            )
        except Exception as err:  # noqa: BLE001 - a broken mirror must not stop training
            log.warning("W&B: could not start (%s); continuing with the local record only.", err)
            self.run = None

    def log(self, metrics: dict[str, Any], step: int) -> None:
        if self.run is None:
            return
        try:
            self.run.log({k: v for k, v in metrics.items() if v is not None}, step=step)
        except Exception as err:  # noqa: BLE001
            log.warning("W&B: logging failed (%s); continuing with the local record only.", err)
            self.run = None

    def save(self, path: Path) -> None:
        """Keep the file ``path`` (the record's ``eval.json``: per-problem outcomes) with the run, re-uploaded
        whenever it changes (once per path: W&B follows the file from then on)."""
        if self.run is None or path in self.saved:
            return
        self.saved.add(path)
        try:
            self.run.save(str(path), base_path=str(path.parent), policy="live")
        except Exception as err:  # noqa: BLE001
            log.warning("W&B: saving %s failed (%s); the local record has it.", path.name, err)

    def finish(self, exit_code: int = 0) -> None:
        if self.run is not None:
            try:
                self.run.finish(exit_code=exit_code)
            except Exception as err:  # noqa: BLE001
                log.warning("W&B: finish failed (%s).", err)
            self.run = None
