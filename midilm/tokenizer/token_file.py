"""Token arrays on disk: one validated reader for ``.npy`` token files.

``numpy.load`` trusts a file's header: a header claiming 10**12 rows allocates
terabytes, an object array needs pickle (which runs code), and a float or 3-D
array loads fine and fails later. :func:`load_tokens` checks the header
against the file before reading a byte of data and never unpickles.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from midilm import vocab
from midilm.errors import TokenError
from midilm.files import open_regular
from midilm.npyfile import read_integer_rows


def load_tokens(path: str | os.PathLike) -> np.ndarray:
    """The integer token array ``[n_events, 8]`` of an ``.npy`` file, or a
    :class:`~midilm.errors.TokenError` naming the file and what is wrong
    (empty, not ``.npy``, a header the data does not match, a dtype other than
    integers, a shape other than ``[n, 8]``)."""
    path = Path(path)
    try:
        with open_regular(path) as file:
            data = file.read()
    except OSError as exc:
        raise TokenError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if not data:
        raise TokenError(f"{path}: the file is empty, not an .npy token array")
    return read_integer_rows(data, str(path), TokenError, columns=vocab.EVENT_LEN)
