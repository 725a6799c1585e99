"""Hold stop signals until a safe point, so a preempted or timed-out job checkpoints first.

SLURM asks a job to stop with SIGTERM (requeue, preemption) or, ``signal_delay_s`` before its time
limit, with SIGUSR2 (submitit's cue to requeue it). Inside :class:`DeferredSignals`, those signals
are only recorded; the trainer calls :meth:`DeferredSignals.deliver` at the end of a step, after
writing a checkpoint, and the handlers that were there before (submitit's) then run as usual.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR2)


class DeferredSignals:
    def __init__(self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> None:
        self.signals = signals
        self.pending: list[int] = []
        self._previous: dict[int, object] = {}

    def __enter__(self) -> DeferredSignals:
        if threading.current_thread() is threading.main_thread():  # handlers live in the main thread
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._hold)
        return self

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        self.pending.append(signum)

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def deliver(self) -> None:
        """Put the previous handlers back and hand them the held signals (in arrival order)."""
        held, self.pending = self.pending, []
        self._restore()
        for sig in held:
            os.kill(os.getpid(), sig)

    def __exit__(self, *exc) -> None:
        self.deliver()
