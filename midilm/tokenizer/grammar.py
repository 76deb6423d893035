"""What makes a token row valid: the event id, then each parameter in its
range (``vocab.slot_ranges()``), then PAD; or an exact BOS or EOS row.

Generation and evaluation use :func:`invalid_rows` for syntax-error rates;
:func:`check_tokens` turns the first problem into a :class:`TokenError`.
"""

from __future__ import annotations

import numpy as np

from midilm import vocab
from midilm.errors import TokenError

_RANGES = vocab.slot_ranges()


def check_shape(tokens: np.ndarray, source: str | None = None) -> np.ndarray:
    """``tokens`` as an int64 array, after checking it is an ``[n, 8]`` integer array."""
    where = f"{source}: " if source else ""
    array = np.asarray(tokens)
    if array.ndim != 2 or array.shape[1] != vocab.EVENT_LEN:
        raise TokenError(f"{where}expected token rows of shape [n, {vocab.EVENT_LEN}], got shape {list(array.shape)}")
    if not np.issubdtype(array.dtype, np.integer):
        raise TokenError(f"{where}expected an integer token array, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def _marker_row(marker: int) -> np.ndarray:
    row = np.full(vocab.EVENT_LEN, vocab.PAD, np.int64)
    row[0] = marker
    return row


_BOS_ROW, _EOS_ROW = _marker_row(vocab.BOS), _marker_row(vocab.EOS)


USED_SLOTS = np.array([[slot <= len(vocab.EVENT_PARAMS[name]) for slot in range(vocab.EVENT_LEN)] for name in vocab.EVENT_NAMES])
"""[event kind, slot]: whether the event type uses the slot (the event id and its parameters)."""


def event_rows(tokens: np.ndarray, check_padding: bool = True) -> np.ndarray:
    """Whether each row is a valid event (not BOS/EOS). With ``check_padding``
    off, the slots after the event's parameters may hold anything, as the
    reference's decoder reads rows."""
    tokens = check_shape(tokens)
    kind = tokens[:, 0] - vocab.FIRST_EVENT_ID
    is_event = (kind >= 0) & (kind < len(vocab.EVENT_NAMES))
    kind = np.where(is_event, kind, 0)
    ranges = _RANGES[kind]
    in_range = (tokens >= ranges[:, :, 0]) & (tokens < ranges[:, :, 1])
    if not check_padding:
        in_range |= ~USED_SLOTS[kind]
    return is_event & in_range.all(axis=1)


def invalid_rows(tokens: np.ndarray) -> np.ndarray:
    """Boolean array: True for each row that is neither a valid event nor an
    exact BOS or EOS row (PAD rows count as invalid)."""
    tokens = check_shape(tokens)
    markers = (tokens == _BOS_ROW).all(axis=1) | (tokens == _EOS_ROW).all(axis=1)
    return ~(event_rows(tokens) | markers)


def describe_row(row: np.ndarray) -> str:
    """Why a row is invalid, in words."""
    first = int(row[0])
    if first in (vocab.BOS, vocab.EOS):
        return f"a {'BOS' if first == vocab.BOS else 'EOS'} row must hold PAD ({vocab.PAD}) after its first id, got {row.tolist()}"
    if first not in vocab.ID_EVENT:
        return f"first id {first} is not an event id ({vocab.FIRST_EVENT_ID}..{vocab.LAST_EVENT_ID}), BOS or EOS"
    name = vocab.ID_EVENT[first]
    params = vocab.EVENT_PARAMS[name]
    ranges = _RANGES[vocab.EVENT_NAMES.index(name)]
    for slot in range(1, vocab.EVENT_LEN):
        low, high = ranges[slot]
        if not low <= row[slot] < high:
            what = params[slot - 1] if slot <= len(params) else "padding"
            return f"{name} slot {slot} ({what}) holds id {int(row[slot])}, outside {low}..{high - 1}"
    return "valid"


def check_tokens(tokens: np.ndarray, source: str | None = None) -> None:
    """Raise :class:`TokenError` naming the first invalid row and why."""
    array = check_shape(tokens, source)
    bad = np.flatnonzero(invalid_rows(array))
    if len(bad):
        where = f"{source}: " if source else ""
        raise TokenError(f"{where}row {int(bad[0])} is invalid ({len(bad)} invalid rows in all): {describe_row(array[bad[0]])}")
