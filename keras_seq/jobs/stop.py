"""The one way a long command stops: SIGINT and SIGTERM set a request (`STOP`) that every workflow, pool and
training loop checks at its safe points, so a signal ends a command with one line and nothing half-written.

`stop_signals()` installs the handlers for a block (nested blocks share one request); `STOP.check(what)` raises
`RunInterrupted` once a stop was requested.
"""

from __future__ import annotations

import contextlib
import signal
import threading

from keras_seq.errors import RunInterrupted


class StopRequest:
    """Set by SIGINT or SIGTERM inside `stop_signals`; long commands check it at their safe points."""

    def __init__(self):
        self.signal: int | None = None
        self.depth = 0  # nested `stop_signals` blocks; the outermost starts with no request

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def check(self, what: str) -> None:
        """Raise `RunInterrupted` if a stop was requested (nothing is published)."""
        if self.signal is not None:
            raise RunInterrupted(f"{signal.Signals(self.signal).name} received: {what} stopped; nothing was written.")


STOP = StopRequest()


@contextlib.contextmanager
def stop_signals(on_stop=None):
    """SIGINT and SIGTERM set `STOP` (and call `on_stop`) instead of raising wherever Python happens to be.

    A second signal raises `KeyboardInterrupt` at once. Outside the main
    thread this does nothing. On leaving, the previous handlers come back.
    """
    if threading.current_thread() is not threading.main_thread():
        yield StopRequest()  # signals reach only the main thread: nothing to wait for here
        return
    if STOP.depth == 0:
        STOP.signal = None

    def handle(signum, frame):
        if STOP.requested:
            raise KeyboardInterrupt
        STOP.signal = signum
        if on_stop is not None:
            on_stop()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    STOP.depth += 1
    try:
        yield STOP
    finally:
        STOP.depth -= 1
        for sig, handler in previous.items():
            signal.signal(sig, handler)
