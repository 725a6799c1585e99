"""Stop signals are held until the trainer's safe point, then reach the handler that was there."""

import os
import signal

from pipo.signals import DeferredSignals


def test_signals_are_held_then_delivered_to_the_previous_handler():
    seen = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: seen.append(signum))
    try:
        with DeferredSignals() as stop:
            os.kill(os.getpid(), signal.SIGUSR2)
            assert seen == [] and stop.pending == [signal.SIGUSR2]
            stop.deliver()
            assert seen == [signal.SIGUSR2] and stop.pending == []
        os.kill(os.getpid(), signal.SIGUSR2)  # outside: the original handler, directly
        assert seen == [signal.SIGUSR2, signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)
