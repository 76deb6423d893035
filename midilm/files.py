"""Opening files that may come from anyone: only regular files, never a blocking open.

A path named ``song.mid`` can be a named pipe (opening it waits forever for
a writer), a device (``/dev/zero`` never ends) or a socket. Every reader of
user-given files (sources of ``prepare``, store files, checkpoint metadata)
opens them here: the path is checked before it is opened, then opened
without blocking and checked again on the open descriptor, so a file
swapped in between the two checks is refused too.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from typing import BinaryIO

_KINDS: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


def file_kind(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words ("a regular file", "a named pipe (FIFO)", ...)."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


class NotRegularFileError(OSError):
    """Raised instead of opening anything but a regular file; ``strerror`` says what the path is."""

    def __init__(self, path: str | os.PathLike, mode: int) -> None:
        super().__init__(errno.EINVAL, f"not a regular file ({file_kind(mode)}); only regular files are read", str(path))


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """``path`` opened for binary reading if it is a regular file (symbolic links
    followed); :class:`NotRegularFileError` (an ``OSError``) otherwise, without
    ever blocking."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFileError(path, mode)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(path, flags)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(path, mode)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def describe(path: str | os.PathLike) -> str:
    """What is at ``path``, in words, for error messages ("missing" when nothing)."""
    try:
        return file_kind(os.stat(path).st_mode)
    except OSError:
        return "missing"
