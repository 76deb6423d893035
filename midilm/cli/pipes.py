"""Standard output and error that outlive their reader.

``midilm info song.mid | head -3`` closes the pipe after three lines, and
Ctrl-C on ``midilm train ... | tee log`` kills ``tee`` together with midilm.
Python reports the next write to such a pipe as ``BrokenPipeError``, which
would end the command with a traceback, possibly before it saved its work.
Under :func:`tolerant_stdio` a write to a pipe without a reader is dropped
instead: the command finishes what it was doing (a training run saves its
checkpoint), and :func:`midilm.cli.main` exits with :data:`SIGPIPE_EXIT`, the
status a shell reports for a program stopped by SIGPIPE.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

SIGPIPE_EXIT = 128 + 13
"""Exit status of a command whose standard output lost its reader (as ``yes | head`` reports)."""


class TolerantStream:
    """A text stream that drops what it is given once its pipe has no reader.

    Everything else (``fileno``, ``isatty``, ``encoding``...) is the wrapped
    stream's, so progress bars and ``print`` use it as they would the original.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._drop_output()
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._drop_output()

    def _drop_output(self) -> None:
        """From now on write nothing; the file descriptor is pointed at the null
        device, so that what the stream still buffers (flushed again when Python
        exits) and what C code writes to it go nowhere instead of failing."""
        self.reader_gone = True
        try:
            descriptor = self._stream.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
        except (OSError, ValueError, AttributeError):  # not a file (a test's capture buffer): nothing is buffered below us
            return
        try:
            os.dup2(null, descriptor)
        finally:
            os.close(null)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@dataclass(frozen=True)
class StandardStreams:
    stdout: TolerantStream
    stderr: TolerantStream


@contextmanager
def tolerant_stdio() -> Iterator[StandardStreams]:
    """Run the block with ``sys.stdout`` and ``sys.stderr`` as :class:`TolerantStream`;
    both are flushed and the originals put back afterwards."""
    saved = sys.stdout, sys.stderr
    streams = StandardStreams(TolerantStream(sys.stdout), TolerantStream(sys.stderr))
    sys.stdout, sys.stderr = streams.stdout, streams.stderr
    try:
        yield streams
    finally:
        streams.stdout.flush()
        streams.stderr.flush()
        sys.stdout, sys.stderr = saved
