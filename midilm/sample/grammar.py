"""The v2 grammar as logit masks: at every slot only tokens that keep the row decodable.

Slot 0 allows the six event types, and EOS once enough events exist; slot s of
an event of type e allows that parameter's id range; slots past the event's
length allow only PAD. Finished samples are held at PAD. Masks are additive
(0 or -inf) and precomputed, so applying one is a gather and an add. Which
mask row each sample needs is worked out on numpy; the table lives where the
logits are (:mod:`midilm.sample.arrays`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from midilm import vocab
from midilm.sample.arrays import NumpyOps, TorchOps

N_EVENTS = len(vocab.EVENT_NAMES)
_EVENT_LENGTHS = np.array([vocab.EVENT_LENGTH[name] for name in vocab.EVENT_NAMES])


def mask_table(vocab_size: int = vocab.VOCAB_SIZE) -> np.ndarray:
    """Additive masks ``[event types + 3, 8, vocab_size]`` (float32): a row per event type,
    then the event start without and with EOS, then a finished sample."""
    ranges = vocab.slot_ranges()  # [6, 8, 2]
    table = np.full((N_EVENTS + 3, vocab.EVENT_LEN, vocab_size), -np.inf, dtype=np.float32)
    for e in range(N_EVENTS):
        for s in range(vocab.EVENT_LEN):
            lo, hi = ranges[e, s]
            table[e, s, lo:hi] = 0
    start, end = vocab.FIRST_EVENT_ID, vocab.LAST_EVENT_ID + 1
    table[N_EVENTS, 0, start:end] = 0  # an event start, EOS not yet allowed
    table[N_EVENTS + 1, 0, start:end] = 0  # an event start, EOS allowed
    table[N_EVENTS + 1, 0, vocab.EOS] = 0
    table[N_EVENTS + 2, :, vocab.PAD] = 0  # a finished sample
    return table


class GrammarMask:
    """Additive masks for every (event type, slot), plus the event-start masks, as arrays of ``ops``."""

    def __init__(self, ops: NumpyOps | TorchOps, vocab_size: int = vocab.VOCAB_SIZE) -> None:
        """``vocab_size``: the model's output classes; ids past the v2 vocabulary are never sampled."""
        self.ops = ops
        self.table = ops.asarray(mask_table(vocab_size))
        self.start_row = N_EVENTS
        self.finished_row = N_EVENTS + 2

    def for_slot(self, slot: int, event_index: np.ndarray, eos_allowed: bool, finished: np.ndarray) -> Any:
        """Masks [B, V] for the given slot; ``event_index`` holds each sample's
        current event type (0..5; ignored at slot 0)."""
        rows = np.full_like(event_index, self.start_row + (1 if eos_allowed else 0)) if slot == 0 else event_index
        rows = np.where(finished, self.finished_row, rows)
        return self.table[self.ops.asarray(rows), slot]

    @staticmethod
    def forced(slot: int, event_index: np.ndarray, finished: np.ndarray) -> np.ndarray:
        """True where the slot admits one token only (PAD past an event's end,
        or a finished sample): no need to sample it."""
        if slot == 0:
            return finished.copy()
        return finished | (slot >= _EVENT_LENGTHS[event_index])
