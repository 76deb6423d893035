"""The v2 grammar as logit masks: at every slot only tokens that keep the row decodable.

Slot 0 allows the six event types, and EOS once enough events exist; slot s of
an event of type e allows that parameter's id range; slots past the event's
length allow only PAD. Finished samples are held at PAD. Masks are additive
(0 or -inf) and precomputed, so applying one is a gather and an add.
"""

from __future__ import annotations

import torch

from midilm import vocab

N_EVENTS = len(vocab.EVENT_NAMES)


class GrammarMask:
    """Additive masks for every (event type, slot), plus the event-start masks."""

    def __init__(self, device: torch.device, dtype: torch.dtype = torch.float32, vocab_size: int = vocab.VOCAB_SIZE) -> None:
        """``vocab_size``: the model's output classes; ids past the v2 vocabulary are never sampled."""
        ranges = vocab.slot_ranges()  # [6, 8, 2]
        table = torch.full((N_EVENTS + 3, vocab.EVENT_LEN, vocab_size), float("-inf"), dtype=dtype)
        for e in range(N_EVENTS):
            for s in range(vocab.EVENT_LEN):
                lo, hi = ranges[e, s]
                table[e, s, lo:hi] = 0
        start, end = vocab.FIRST_EVENT_ID, vocab.LAST_EVENT_ID + 1
        table[N_EVENTS, 0, start:end] = 0  # an event start, EOS not yet allowed
        table[N_EVENTS + 1, 0, start:end] = 0  # an event start, EOS allowed
        table[N_EVENTS + 1, 0, vocab.EOS] = 0
        table[N_EVENTS + 2, :, vocab.PAD] = 0  # a finished sample
        self.table = table.to(device)
        self.start_row = N_EVENTS
        self.finished_row = N_EVENTS + 2

    def for_slot(self, slot: int, event_index: torch.Tensor, eos_allowed: bool, finished: torch.Tensor) -> torch.Tensor:
        """Masks [B, V] for the given slot; ``event_index`` holds each sample's
        current event type (0..5; ignored at slot 0)."""
        if slot == 0:
            row = torch.full_like(event_index, self.start_row + (1 if eos_allowed else 0))
        else:
            row = event_index.clone()
        row = torch.where(finished, torch.full_like(row, self.finished_row), row)
        return self.table[row, slot]

    def forced(self, slot: int, event_index: torch.Tensor, finished: torch.Tensor) -> torch.Tensor:
        """True where the slot admits one token only (PAD past an event's end,
        or a finished sample): no need to sample it."""
        if slot == 0:
            return finished.clone()
        lengths = torch.tensor([vocab.EVENT_LENGTH[name] for name in vocab.EVENT_NAMES], device=event_index.device)
        return finished | (slot >= lengths[event_index])
