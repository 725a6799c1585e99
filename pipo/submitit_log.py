"""submitit's log in a sweep's launcher process: the failing-``sacct`` warning once per sweep, not once per poll.

While a sweep's jobs run, the launcher (``reproduce/train.py -m`` with ``cluster=slurm``) waits on them
through submitit's job watcher, which calls ``sacct`` at every poll. On a SLURM cluster without
accounting (``scripts/slurm_local.sh``, the CI one) each call fails, and the watcher logs
``Call #N - Bypassing sacct error …, status may be inaccurate.`` on the ``submitit`` logger
(``submitit.core.core.InfoWatcher.update``, submitit 1.5): a warning every poll, for the whole sweep.
The first one says what is going on; :func:`quiet_sacct_warnings` keeps it and drops the rest. A sweep
launches one Hydra multirun per sub-grid (``pipo.sweeps.main``), each its own process: they share a
flag file (``PIPO_SACCT_WARNED``, set by the sweep), so the sweep's log holds the warning once.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

SUBMITIT_LOGGER = "submitit"
SACCT_WARNING = "Bypassing sacct error"  # the watcher's message (submitit/core/core.py, InfoWatcher.update)
FLAG_ENV = "PIPO_SACCT_WARNED"  # a file that exists once one of the sweep's processes showed the warning


class FirstOnly(logging.Filter):
    """Passes the first record whose message contains ``marker`` (noting that later ones are dropped),
    drops the later ones, and passes every other record. ``flag``: a file shared with other processes;
    once it exists (one of them passed its first record) none passes any more."""

    def __init__(self, marker: str, flag: Path | None = None) -> None:
        super().__init__()
        self.marker = marker
        self.flag = flag
        self.seen = 0

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.marker not in message:
            return True
        self.seen += 1
        if self.seen > 1 or (self.flag is not None and self.flag.exists()):
            return False
        if self.flag is not None:
            self.flag.touch()
        record.msg, record.args = f"{message} (shown once per sweep: later ones are not logged)", None
        return True


def quiet_sacct_warnings() -> FirstOnly:
    """Install (once per process) the filter on submitit's logger that lets one sacct warning through,
    one for the whole sweep where ``PIPO_SACCT_WARNED`` names the sweep's flag file."""
    import submitit.core.logger  # noqa: F401 - submitit configures its logger on import: do that first

    logger = logging.getLogger(SUBMITIT_LOGGER)
    for existing in logger.filters:
        if isinstance(existing, FirstOnly) and existing.marker == SACCT_WARNING:
            return existing
    flag = os.environ.get(FLAG_ENV)
    once = FirstOnly(SACCT_WARNING, Path(flag) if flag else None)
    logger.addFilter(once)
    return once
