"""A small numpy group-by kit: stable lexicographic orders, groups of equal
keys, first occurrences. Nothing here knows MIDI."""

from __future__ import annotations

import numpy as np

SMALL = 2048
"""Below this many rows one ``lexsort`` call is cheaper than packing a key."""


def sort_order(*columns: np.ndarray) -> np.ndarray:
    """Indices that sort rows by the columns (first column most significant),
    ties in row order: a stable lexicographic sort, done as one sort of a
    packed integer key when the values allow it."""
    return _ordered(columns)[0]


def sort_groups(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`sort_order` of the rows, and for the sorted rows whether each
    starts / ends a group of equal keys."""
    order, sorted_key = _ordered(columns)
    if sorted_key is None:
        return (order, *group_bounds(*(column[order] for column in columns)))
    return (order, *group_bounds(sorted_key))


def _ordered(columns: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`sort_order`, and the packed key sorted (None when the columns
    were sorted as they are).

    The packed key carries the row index in its lowest digits, so one
    in-place merge sort (about linear on rows nearly in order already, as a
    track's events are) gives both the order and the sorted key: two arrays
    of the rows' length, where an argsort takes four.
    """
    count = len(columns[0])
    if count < 2:
        return np.arange(count), None
    if count >= SMALL:
        key = _packed((*columns, None), count)
        if key is not None:
            key.sort(kind="stable")
            order = key % count
            key //= count
            return order, key
    return np.lexsort(columns[::-1]), None


def _packed(columns: tuple[np.ndarray | None, ...], count: int) -> np.ndarray | None:
    """The columns as one int64 key with the same order, None standing for
    the row index, or None when the key would not fit in 62 bits. Built in
    place: one array of the rows' length."""
    spans = []
    for column in columns:
        low, high = (0, count - 1) if column is None else (int(column.min()), int(column.max()))
        spans.append((low, high - low + 1))
    if np.prod([float(span) for _, span in spans]) >= 2.0**61:  # a margin for the rounding of the product
        return None
    key = np.zeros(count, np.int64)
    for column, (low, span) in zip(columns, spans, strict=True):
        key *= span
        if column is None:
            for start in range(0, count, _STRETCH):  # no index array of the rows' length
                key[start : start + _STRETCH] += np.arange(start, min(start + _STRETCH, count))
        else:
            key += column
            key -= low
    return key


_STRETCH = 1 << 16


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
