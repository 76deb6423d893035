"""Ctrl-C during training: stop within seconds, at a point the run can resume from exactly."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class StepAborted(BaseException):
    """Raised inside an abortable block by the first Ctrl-C: the block's partial
    work (a step's forward and backward, an evaluation) is dropped, and the loop
    saves the state it had before the block began."""


class Interrupt:
    """The first Ctrl-C asks the run to stop; a second one quits without saving.

    Inside :meth:`abortable` the request also raises :class:`StepAborted` at
    once, so a long step or evaluation does not make the user wait; elsewhere
    (the optimizer update, writing a checkpoint) it waits for the loop's next
    check of :attr:`requested`. With ``can_abort`` False (several processes,
    which must stop at the same step) nothing is aborted.
    """

    def __init__(self, can_abort: bool = True) -> None:
        self.requested = False
        self.can_abort = can_abort
        self._in_abortable = False
        self._previous: Any = None

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    @contextmanager
    def abortable(self) -> Iterator[None]:
        """Run the block so that Ctrl-C (earlier or during it) aborts it."""
        if self.requested and self.can_abort:
            raise StepAborted
        self._in_abortable = self.can_abort
        try:
            yield
        finally:
            self._in_abortable = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        _say("\nstopping: saving the last whole step (Ctrl-C again to quit without saving)")
        if self._in_abortable:
            self._in_abortable = False
            raise StepAborted


def _say(text: str) -> None:
    """Print from a signal handler: a closed terminal or pipe must not break the save that follows."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
