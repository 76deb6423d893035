"""A small numpy group-by kit: stable lexicographic orders, groups of equal
keys, first occurrences. Nothing here knows MIDI."""

from __future__ import annotations

import numpy as np

SMALL = 2048
"""Below this many rows one ``lexsort`` call is cheaper than packing a key."""


def sort_order(*columns: np.ndarray) -> np.ndarray:
    """Indices that sort rows by the columns (first column most significant),
    ties in row order: a stable lexicographic sort, done as one stable sort
    of a packed integer key when the values allow it (a merge sort, about
    linear on rows nearly in order already, as a track's events are)."""
    return _ordered(columns)[0]


def sort_groups(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`sort_order` of the rows, and for the sorted rows whether each
    starts / ends a group of equal keys."""
    order, key = _ordered(columns)
    if key is None:
        return (order, *group_bounds(*(column[order] for column in columns)))
    key = key[order]
    return (order, *group_bounds(key))


def _ordered(columns: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`sort_order`, and the packed key it sorted (None when it sorted the columns)."""
    count = len(columns[0])
    if count < 2:
        return np.arange(count), None
    if count >= SMALL:
        key = _packed(columns)
        if key is not None:
            return np.argsort(key, kind="stable"), key
    return np.lexsort(columns[::-1]), None


def _packed(columns: tuple[np.ndarray, ...]) -> np.ndarray | None:
    """The columns as one int64 key with the same order, or None when it
    would not fit in 63 bits. Built in place: one array of the rows' length."""
    spans = []
    for column in columns:
        low, high = int(column.min()), int(column.max())
        spans.append((low, high - low + 1))
    if np.prod([float(span) for _, span in spans]) >= 2.0**61:  # a margin for the rounding of the product
        return None
    key = np.zeros(len(columns[0]), np.int64)
    for column, (low, span) in zip(columns, spans, strict=True):
        key *= span
        key += column
        key -= low
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
