"""A SLURM cluster without accounting: submitit's watcher warns at every poll; a sweep logs it once."""

from __future__ import annotations

import logging
import os
import stat

import pytest
from submitit.slurm.slurm import SlurmInfoWatcher

from pipo.submitit_log import FLAG_ENV, SACCT_WARNING, FirstOnly, quiet_sacct_warnings


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def no_accounting(tmp_path, monkeypatch):
    """``sacct`` as it answers on a cluster without accounting storage: an error, exit status 1."""
    sacct = tmp_path / "sacct"
    sacct.write_text("#!/bin/sh\necho 'sacct: error: Slurm accounting storage is disabled' >&2\nexit 1\n")
    sacct.chmod(sacct.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv(FLAG_ENV, raising=False)
    logger = logging.getLogger("submitit")
    handler, filters = Collect(), list(logger.filters)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.filters[:] = filters


def polls(n: int, collected: Collect) -> list[str]:
    """The sacct warnings of ``n`` polls of submitit's own watcher (as its slurm jobs poll it)."""
    watcher = SlurmInfoWatcher(delay_s=0)
    watcher.register_job("4242")
    start = len(collected.messages)
    for _ in range(n):
        watcher.update()
    return [m for m in collected.messages[start:] if SACCT_WARNING in m]


def test_submitits_sacct_warning_is_logged_once_per_sweep(no_accounting):

    assert len(polls(5, no_accounting)) == 5  # submitit alone: one warning per poll
    once = quiet_sacct_warnings()
    assert quiet_sacct_warnings() is once  # installed once however often it is called
    shown = polls(7, no_accounting)
    assert len(shown) == 1 and shown[0].startswith("Call #1 - Bypassing sacct error")
    assert "once per sweep" in shown[0]
    logging.getLogger("submitit").warning("another warning")  # other records pass
    assert no_accounting.messages[-1] == "another warning"


def test_a_sweeps_launchers_share_the_one_warning(no_accounting, tmp_path):
    """A sweep's sub-grids run in launchers of their own; a shared flag file keeps it one for the sweep."""
    logger, flag = logging.getLogger("submitit"), tmp_path / "sacct_warned"
    for launcher in range(2):  # one after the other, as pipo.sweeps.main runs them
        logger.filters[:] = [f for f in logger.filters if not isinstance(f, FirstOnly)]
        logger.addFilter(FirstOnly(SACCT_WARNING, flag))
        assert len(polls(4, no_accounting)) == (1 if launcher == 0 else 0)
    assert flag.exists()
