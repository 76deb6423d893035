"""A strict reader of NumPy ``.npy`` files that may be damaged or hostile.

``np.load`` trusts the header: a header claiming 10^12 rows makes it try to
allocate them, and a damaged header surfaces as one of half a dozen
exception types from deep inside NumPy. Here the header is parsed with
:func:`ast.literal_eval` under size limits, checked for exactly the dtype
and row shape the caller expects, and compared with the bytes actually
present before any array is made; every problem is one exception class the
caller chooses, naming the file. Only version 1-3 headers, C order, no
pickles. The format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

import numpy as np

from midilm.errors import MidilmError

MAGIC = b"\x93NUMPY"
MAX_HEADER_BYTES = 1 << 16
"""NumPy itself writes headers of a few dozen bytes and refuses reading ones over 10,000 by default."""
HEADER_KEYS = frozenset({"descr", "fortran_order", "shape"})


def _header(data: bytes, where: str, error: type[MidilmError]) -> tuple[dict[str, Any], int]:
    """The header dict and the offset of the data."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 2:
        raise error(f"{where}: not a .npy file (no NumPy magic string)")
    major = data[len(MAGIC)]
    if major not in (1, 2, 3):
        raise error(f"{where}: .npy format version {major} is not one of 1, 2, 3")
    size_bytes = 2 if major == 1 else 4
    start = len(MAGIC) + 2 + size_bytes
    if len(data) < start:
        raise error(f"{where}: .npy file cut inside its header")
    length = int.from_bytes(data[len(MAGIC) + 2 : start], "little")
    if length > MAX_HEADER_BYTES or len(data) < start + length:
        raise error(f"{where}: .npy header of {length} bytes ({len(data) - start} present; at most {MAX_HEADER_BYTES} read)")
    try:
        text = data[start : start + length].decode("utf-8" if major == 3 else "latin1")
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise error(f"{where}: unreadable .npy header: {type(exc).__name__}: {exc}") from None
    if not isinstance(header, dict) or set(header) != HEADER_KEYS:
        raise error(f"{where}: .npy header is not a dict of {', '.join(sorted(HEADER_KEYS))}")
    return header, start + length


def read_npy(data: bytes, where: str, error: type[MidilmError], *, dtype: np.dtype, columns: int) -> np.ndarray:
    """The ``[n, columns]`` array of ``dtype`` an ``.npy`` file's bytes hold
    (read-only, a view of ``data``); ``error`` naming ``where`` for a header
    that is unreadable, another dtype, order or shape, or that claims other
    than the bytes present."""
    return _rows(data, where, error, columns, accepts=lambda found: found == dtype, expected=f"{dtype.str!r} ({dtype})")


def read_integer_rows(data: bytes, where: str, error: type[MidilmError], *, columns: int) -> np.ndarray:
    """As :func:`read_npy` for any integer dtype and either memory order:
    token arrays written by other tools (``int64``, ``uint16``, a transposed
    array saved in Fortran order) read alike; objects and floats never."""
    return _rows(data, where, error, columns, accepts=lambda found: found.kind in "iu", expected="an integer dtype", fortran_ok=True)


def _rows(
    data: bytes,
    where: str,
    error: type[MidilmError],
    columns: int,
    *,
    accepts: Callable[[np.dtype], bool],
    expected: str,
    fortran_ok: bool = False,
) -> np.ndarray:
    header, offset = _header(data, where, error)
    shape, descr, fortran = header["shape"], header["descr"], header["fortran_order"]
    if fortran is not False and not (fortran_ok and fortran is True):
        raise error(f"{where}: .npy field fortran_order: expected False, got {fortran!r}")
    if not (isinstance(shape, tuple) and len(shape) == 2 and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
        raise error(f"{where}: .npy field shape: expected (rows, {columns}), got {str(shape)[:60]}")
    if shape[1] != columns:
        raise error(f"{where}: .npy field shape: expected {columns} columns, got {shape[1]}")
    try:
        found = np.dtype(descr) if isinstance(descr, str) else None
    except (TypeError, ValueError):
        found = None
    if found is not None and found.hasobject:
        raise error(f"{where}: .npy holds Python objects, never loaded (unpickling runs code)")
    if found is None or not accepts(found):
        raise error(f"{where}: .npy field descr: expected {expected}, got {str(descr)[:40]!r}")
    needed = shape[0] * columns * found.itemsize
    present = len(data) - offset
    if present != needed:
        raise error(f"{where}: .npy header claims {shape[0]} rows ({needed} bytes of data), the file holds {present} bytes")
    return np.frombuffer(data, dtype=found, offset=offset).reshape(shape, order="F" if fortran else "C")
