"""A small numpy group-by kit: stable lexicographic orders, groups of equal
keys, first occurrences. Nothing here knows MIDI."""

from __future__ import annotations

import numpy as np

SMALL = 2048
"""Below this many rows one ``lexsort`` call is cheaper than packing a key."""


def sort_order(*columns: np.ndarray, nearly_sorted: bool = False) -> np.ndarray:
    """Indices that sort rows by the columns (first column most significant),
    ties in row order: a stable lexicographic sort, done as one argsort of a
    packed integer key when the values allow it. When the rows are
    ``nearly_sorted`` already, a stable merge sort of the key, about linear
    on such input, beats a quicksort (which needs the row index in its key)."""
    return _ordered(columns, nearly_sorted)[0]


def sort_groups(*columns: np.ndarray, nearly_sorted: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`sort_order` of the rows, and for the sorted rows whether each
    starts / ends a group of equal keys."""
    order, key = _ordered(columns, nearly_sorted)
    starts, ends = group_bounds(key[order]) if key is not None else group_bounds(*(column[order] for column in columns))
    return order, starts, ends


def _ordered(columns: tuple[np.ndarray, ...], nearly_sorted: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`sort_order`, and the packed key it sorted (None when it sorted the columns)."""
    count = len(columns[0])
    if count < 2:
        return np.arange(count), None
    if count >= SMALL:
        key = _packed(columns, 1 if nearly_sorted else count)
        if key is not None:
            return (np.argsort(key, kind="stable") if nearly_sorted else np.argsort(key * count + np.arange(count))), key
    return np.lexsort(columns[::-1]), None


def _packed(columns: tuple[np.ndarray, ...], headroom: int) -> np.ndarray | None:
    """The columns as one integer key with the same order, or None when the
    key times ``headroom`` would not fit in 62 bits."""
    key = None
    span_product = headroom
    for column in columns:
        low, high = int(column.min()), int(column.max())
        span = high - low + 1
        span_product *= span
        if span_product >= 1 << 62:
            return None
        shifted = column.astype(np.int64) - low
        key = shifted if key is None else key * span + shifted
    return key


def change_points(values: np.ndarray) -> np.ndarray:
    """Indices where a value differs from the one before (0 included): every
    first occurrence is one of them, and in real files they are few."""
    changed = np.empty(len(values), bool)
    changed[0] = True
    np.not_equal(values[1:], values[:-1], out=changed[1:])
    return changed.nonzero()[0]


def first_seen(values: np.ndarray) -> np.ndarray:
    """Distinct values in order of first appearance."""
    if not len(values):
        return values
    values = values[change_points(values)]
    order, starts, _ = sort_groups(values)
    return values[np.sort(order[starts])]


def group_bounds(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by ``columns``: whether each row starts / ends a group of equal keys."""
    count = len(columns[0])
    starts, ends = np.empty(count, bool), np.empty(count, bool)
    if count:
        starts[0] = ends[-1] = True
        differs = starts[1:]
        np.not_equal(columns[0][1:], columns[0][:-1], out=differs)
        for column in columns[1:]:
            differs |= column[1:] != column[:-1]
        ends[:-1] = differs
    return starts, ends


def first_values(keys: np.ndarray, values: np.ndarray) -> tuple[list[int], list[int]]:
    """Each distinct key and the value at its first occurrence."""
    if not len(keys):
        return [], []
    changes = change_points(keys)
    keys, values = keys[changes], values[changes]
    order, starts, _ = sort_groups(keys)
    first = order[starts]
    return keys[first].tolist(), values[first].tolist()
