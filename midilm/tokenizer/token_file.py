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

_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def load_tokens(path: str | os.PathLike) -> np.ndarray:
    """The integer token array ``[n_events, 8]`` of an ``.npy`` file, or a
    :class:`~midilm.errors.TokenError` naming the file and what is wrong
    (empty, not ``.npy``, a header the data does not match, a dtype other than
    integers, a shape other than ``[n, 8]``)."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size == 0:
                raise TokenError(f"{path}: the file is empty, not an .npy token array")
            try:
                version = np.lib.format.read_magic(file)
                if version not in _HEADER_READERS:
                    raise TokenError(f"{path}: .npy format version {version[0]}.{version[1]} is not supported (1.0 or 2.0)")
                shape, fortran_order, dtype = _HEADER_READERS[version](file)
            except (ValueError, EOFError) as exc:
                raise TokenError(f"{path}: not an .npy file ({exc})") from exc
            _check_layout(path, shape, dtype)
            data_bytes = size - file.tell()
            expected = shape[0] * vocab.EVENT_LEN * dtype.itemsize
            if data_bytes != expected:
                raise TokenError(
                    f"{path}: the header says {shape[0]} rows ({expected} bytes) but the file holds {data_bytes} bytes of data"
                )
            tokens = np.fromfile(file, dtype=dtype, count=shape[0] * vocab.EVENT_LEN)
    except OSError as exc:
        raise TokenError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return tokens.reshape(shape, order="F" if fortran_order else "C")


def _check_layout(path: Path, shape: tuple, dtype: np.dtype) -> None:
    if len(shape) != 2 or shape[1] != vocab.EVENT_LEN:
        raise TokenError(f"{path}: expected token rows of shape [n, {vocab.EVENT_LEN}], got shape {list(shape)}")
    if dtype.hasobject:
        raise TokenError(f"{path}: an array of Python objects, not tokens (object arrays are never loaded: unpickling runs code)")
    if dtype.kind not in "iu":
        raise TokenError(f"{path}: token arrays hold integers, this one holds {dtype}")
