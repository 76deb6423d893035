"""Process pools and per-item CPU-time limits shared by corpus conversion and prepare.

Both jobs run one pure function over many independent items (a piece to
convert, a file to tokenize). Items are dispatched to ``spawn`` processes,
which behave the same on Linux, macOS and Windows and inherit no threads or
locks from the parent; results come back as they finish. Workers ignore
SIGINT so that Ctrl-C reaches only the parent, which stops the pool.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

DEFAULT_CPU_LIMIT_SECONDS = 300.0
"""Per-item guard: generous (the slowest Beethoven quartets take a few CPU-minutes to
convert; a large MIDI file tokenizes in seconds), it only stops pathological inputs."""

T = TypeVar("T")
R = TypeVar("R")


class TimeLimitExceeded(BaseException):
    """Raised inside a :func:`time_limit` block when its time is up.

    A ``BaseException`` so that the ``except Exception`` clauses of the code
    being limited (music21 has many) cannot swallow it.
    """


@contextmanager
def time_limit(cpu_seconds: float | None, *, wall: bool = False) -> Iterator[None]:
    """Interrupt the block with :class:`TimeLimitExceeded` once this process
    has spent ``cpu_seconds`` of CPU time in it (of wall time with ``wall``).

    CPU time by default, so that the same piece succeeds or fails on a busy
    machine as on an idle one (a corpus must not depend on the load); wall
    time also catches a block that waits without computing (a blocking
    read), which the fuzz suite needs. Uses ``SIGPROF`` (``SIGALRM``), so the
    limit applies only in the main thread of a Unix process (every pool
    worker is one); elsewhere, or with ``cpu_seconds`` None or <= 0, the
    block runs unlimited.
    """
    usable = (
        cpu_seconds is not None
        and cpu_seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def _expire(signum, frame):
        raise TimeLimitExceeded()

    signal_number, timer = (signal.SIGALRM, signal.ITIMER_REAL) if wall else (signal.SIGPROF, signal.ITIMER_PROF)
    previous = signal.signal(signal_number, _expire)
    signal.setitimer(timer, cpu_seconds)
    try:
        yield
    finally:
        signal.setitimer(timer, 0)
        signal.signal(signal_number, previous)


def default_workers() -> int:
    """All cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _ignore_sigint(initializer: Callable[..., None] | None, initargs: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)


def parallel_map(
    function: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
    chunksize: int = 1,
) -> Iterator[R]:
    """Yield ``function(item)`` for every item, in completion order.

    ``workers <= 1`` runs in this process (no start-up cost, easy to debug);
    otherwise a pool of ``workers`` spawned processes. ``function`` and
    ``initializer`` must be importable module-level functions. Leaving the
    generator early (an exception, Ctrl-C) terminates the pool. ``chunksize``
    items travel to a worker together: more than 1 pays for many small items,
    1 balances few long ones.
    """
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        for item in items:
            yield function(item)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_ignore_sigint, initargs=(initializer, initargs)) as pool:
        yield from pool.imap_unordered(function, items, chunksize=chunksize)
