"""Seeded mutations of real files: bytes, JSON documents, token arrays.

Every mutation takes a ``random.Random`` and returns the mutated value and a
short description, so a failing case can be named and replayed from its
seed. Byte mutations follow the usual fuzzing repertoire (bit flips,
interesting values, inserted, deleted and repeated spans, truncation,
splicing); JSON mutations replace one value anywhere in a document by a value
of another type or an extreme one, or delete or add a key.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import numpy as np

INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0x81, 0xFE, 0xFF)
INTERESTING_INTS = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)
INTERESTING_JSON = (
    None,
    -1,
    0,
    1,
    10**12,
    -(10**12),
    2**63,
    1.5,
    float("nan"),
    "abc",
    "",
    "../x",
    "/dev/zero",
    [],
    [1, 2],
    {},
    True,
    "x" * 10000,
)


def _span(rng: random.Random, size: int, longest: int = 64) -> tuple[int, int]:
    start = rng.randrange(max(size, 1))
    return start, min(size, start + rng.randint(1, longest))


def flip_bits(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    out = bytearray(data)
    positions = [rng.randrange(len(out)) for _ in range(rng.randint(1, 8))] if out else []
    for position in positions:
        out[position] ^= 1 << rng.randrange(8)
    return bytes(out), f"flip bits at {positions}"


def set_bytes(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    out = bytearray(data)
    changes = []
    for _ in range(rng.randint(1, 8) if out else 0):
        position = rng.randrange(len(out))
        out[position] = rng.choice(INTERESTING_BYTES) if rng.random() < 0.7 else rng.randrange(256)
        changes.append(position)
    return bytes(out), f"set bytes at {changes}"


def set_int(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """Overwrite a 1-, 2- or 4-byte big- or little-endian integer (a length, a count, a delta) with an extreme value."""
    width = rng.choice((1, 2, 4))
    if len(data) < width:
        return data, "set int: too short"
    position = rng.randrange(len(data) - width + 1)
    value = rng.choice(INTERESTING_INTS) & ((1 << (8 * width)) - 1)
    order = rng.choice(("big", "little"))
    return data[:position] + value.to_bytes(width, order) + data[
        position + width :
    ], f"set {width}-byte {order} int at {position} to {value}"


def insert_bytes(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    position = rng.randrange(len(data) + 1)
    length = rng.randint(1, 64)
    chunk = bytes([rng.choice(INTERESTING_BYTES)]) * length if rng.random() < 0.5 else rng.randbytes(length)
    return data[:position] + chunk + data[position:], f"insert {length} bytes at {position}"


def delete_span(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    start, end = _span(rng, len(data))
    return data[:start] + data[end:], f"delete bytes {start}..{end}"


def repeat_span(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    start, end = _span(rng, len(data))
    times = rng.randint(2, 16)
    return data[:start] + data[start:end] * times + data[end:], f"repeat bytes {start}..{end} x{times}"


def truncate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    size = rng.randrange(len(data) + 1)
    return data[:size], f"truncate to {size} bytes"


def extend(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    length = rng.randint(1, 256)
    return data + rng.randbytes(length), f"append {length} random bytes"


def long_varint(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """Insert a variable-length quantity far longer than MIDI's 4 bytes (continuation bytes 0x80..0xFF)."""
    position = rng.randrange(len(data) + 1)
    length = rng.randint(5, 4000)
    chunk = bytes(rng.randrange(0x80, 0x100) for _ in range(length)) + b"\x00"
    return data[:position] + chunk + data[position:], f"insert a {length}-byte varint at {position}"


BYTE_MUTATIONS: tuple[Callable[[random.Random, bytes], tuple[bytes, str]], ...] = (
    flip_bits,
    set_bytes,
    set_int,
    insert_bytes,
    delete_span,
    repeat_span,
    truncate,
    extend,
)
"""Everything but long varints, which the MIDI reader's own fix (issue 15, rows 2 and 3) covers."""


def mutate_bytes(rng: random.Random, data: bytes, rounds: int | None = None) -> tuple[bytes, str]:
    """One to three byte mutations in a row."""
    steps = []
    for _ in range(rounds or rng.randint(1, 3)):
        data, step = rng.choice(BYTE_MUTATIONS)(rng, data)
        steps.append(step)
    return data, "; ".join(steps)


def splice(rng: random.Random, data: bytes, other: bytes) -> tuple[bytes, str]:
    """The start of ``data`` followed by the end of ``other``."""
    cut, other_cut = rng.randrange(len(data) + 1), rng.randrange(len(other) + 1)
    return data[:cut] + other[other_cut:], f"splice at {cut} with another file from {other_cut}"


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside a JSON document (the root included)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:16]):
            found += _paths(item, (*prefix, index))
    return found


def mutate_json(rng: random.Random, document: Any) -> tuple[Any, str]:
    """Replace a random value of the document by an odd one, or delete or add a key."""
    document = json.loads(json.dumps(document))
    path = rng.choice(_paths(document))
    if not path:
        return rng.choice(INTERESTING_JSON), "replace the whole document"
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    action = rng.random()
    if action < 0.15 and isinstance(parent, dict):
        del parent[key]
        return document, f"delete {'.'.join(map(str, path))}"
    if action < 0.25 and isinstance(parent, dict):
        parent["unexpected_" + str(key)] = rng.choice(INTERESTING_JSON)
        return document, f"add a key beside {'.'.join(map(str, path))}"
    old = parent[key]
    if isinstance(old, int) and not isinstance(old, bool) and rng.random() < 0.5:
        new = old + rng.choice((-(10**9), -1, 1, 10**9)) if rng.random() < 0.5 else -old - 1
    else:
        new = rng.choice(INTERESTING_JSON)
    parent[key] = new
    return document, f"set {'.'.join(map(str, path))} to {str(new)[:40]!r}"


def mutate_tokens(rng: random.Random, tokens: np.ndarray) -> tuple[Any, str]:
    """A token array with odd ids, rows, shape or dtype."""
    array = np.array(tokens, dtype=np.uint16)
    kind = rng.randrange(8)
    if kind == 0 and array.size:
        cells = [(rng.randrange(array.shape[0]), rng.randrange(array.shape[1])) for _ in range(rng.randint(1, 20))]
        for row, column in cells:
            array[row, column] = rng.randrange(3406)
        return array, f"set {len(cells)} cells to valid ids"
    if kind == 1 and array.size:
        row = rng.randrange(array.shape[0])
        array[row] = rng.choice((0, 65535, 3405, 3406))
        return array, f"fill row {row} with one id"
    if kind == 2:
        shape = rng.choice(((0, 8), (5,), (3, 7), (2, 8, 1), (1, 9)))
        return np.zeros(shape, dtype=array.dtype), f"shape {shape}"
    if kind == 3:
        dtype = rng.choice((np.int64, np.int8, np.float32, np.bool_, np.uint32))
        values = array.astype(np.int64) - rng.choice((0, 5000))
        return values.astype(dtype), f"dtype {np.dtype(dtype).name}"
    if kind == 4:
        return rng.choice((None, "tokens", [[1, 0, 0, 0, 0, 0, 0, 0]], 7)), "not an array"
    if kind == 5 and len(array) > 2:
        order = list(range(len(array)))
        rng.shuffle(order)
        return array[order], "rows shuffled"
    if kind == 6:
        return np.full((rng.randint(1, 50), 8), rng.randrange(65536), dtype=np.uint16), "every id the same"
    return array[:, ::-1] if array.ndim == 2 else array, "columns reversed (a non-contiguous view)"
