"""Stop ``lakegate run`` on SIGTERM as on Ctrl-C: Kubernetes, systemd and ``timeout`` send TERM, people INT.

While a job executes, Dagster handles both itself: it stops the run at its next safe point (between steps,
or inside step code at the next Python bytecode; dlt's own interception is off, see ``instance.prepare``)
and records it as failed. This context covers the rest of the command, waiting for a pool included:
either signal raises ``KeyboardInterrupt`` there, and the signal is recorded for the exit status.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType


@dataclass
class Received:
    """The stop signal received, if any."""

    signum: int | None = None

    @property
    def exit_status(self) -> int:
        """The shell's convention for a process stopped by a signal: 128 + its number."""
        return 128 + (self.signum or signal.SIGINT)


@contextmanager
def stop_on_terminate() -> Iterator[Received]:
    """Within the block, SIGTERM and SIGINT both interrupt the run at its next safe point."""
    received = Received()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def on_int(signum: int, frame: FrameType | None) -> None:
        received.signum = received.signum or signum
        signal.default_int_handler(signum, frame)

    def on_term(signum: int, frame: FrameType | None) -> None:
        received.signum = received.signum or signum
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:
            signal.default_int_handler(signal.SIGINT, frame)

    signal.signal(signal.SIGINT, on_int)
    signal.signal(signal.SIGTERM, on_term)
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
