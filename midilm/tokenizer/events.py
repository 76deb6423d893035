"""Token rows -> events with named fields, cumulative time and a tempo map.

The one parser of token arrays: decoding, the quality check, summaries, the
sampler's clock and :mod:`midilm.notes` read token rows through it. A row is an
event when its first id is an event id and each of its parameters lies in its
range (:func:`midilm.tokenizer.grammar.event_rows`); BOS, EOS, PAD and invalid
rows are not events and take no time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from midilm import vocab
from midilm.tokenizer.grammar import USED_SLOTS, check_shape, event_rows
from midilm.tokenizer.tempo import TempoMap, bpm_to_tempo

_LOWEST_ID = vocab.slot_ranges()[:, :, 0]
"""[event kind, slot] -> the id of value 0 (the event's own id in slot 0, PAD past its parameters)."""


def parse_rows(tokens: np.ndarray, strict_padding: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(is_event, values)`` of token rows ``[n, 8]``: whether each row is a
    valid event, and ``values[n, 8]``: the event id in slot 0, then each
    parameter's value (token id minus the id of value 0) in its slot
    (``vocab.PARAM_SLOT``); 0 in the slots an event does not use and in every
    slot of a row that is not an event. With ``strict_padding`` off the slots
    after an event's parameters may hold anything, as the reference's decoder
    reads rows."""
    rows = check_shape(tokens)
    is_event = event_rows(rows, check_padding=strict_padding)
    kind = np.where(is_event, rows[:, vocab.EVENT_SLOT] - vocab.FIRST_EVENT_ID, 0)
    values = np.where(USED_SLOTS[kind] & is_event[:, None], rows - _LOWEST_ID[kind], 0)
    values[:, vocab.EVENT_SLOT] = np.where(is_event, rows[:, vocab.EVENT_SLOT], 0)
    return is_event, values


@dataclass(frozen=True)
class EventTable:
    """The events of a token array, in order: ``rows`` (each event's row in the
    array) and ``values`` (see :func:`parse_rows`), with their time."""

    rows: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, tokens: np.ndarray, strict_padding: bool = False) -> EventTable:
        """The events of token rows ``[n, 8]`` (see :func:`parse_rows`)."""
        is_event, values = parse_rows(tokens, strict_padding)
        rows = np.flatnonzero(is_event)
        return cls(rows, values[rows])

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def event_id(self) -> np.ndarray:
        return self.values[:, vocab.EVENT_SLOT]

    def column(self, param: str) -> np.ndarray:
        """Each event's value of ``param`` (0 for events without it)."""
        return self.values[:, vocab.PARAM_SLOT[param]]

    def is_event(self, *names: str) -> np.ndarray:
        """Whether each event is one of the named event types."""
        return np.isin(self.event_id, [vocab.EVENT_ID[name] for name in names])

    @cached_property
    def beat(self) -> np.ndarray:
        """Whole beats from the start (``time1`` counts beats since the previous event)."""
        return np.cumsum(self.column("time1"))

    @cached_property
    def step(self) -> np.ndarray:
        """1/16-beat steps from the start."""
        return self.beat * vocab.STEPS_PER_BEAT + self.column("time2")

    def tempo_map(self, ticks_per_beat: int = vocab.STEPS_PER_BEAT) -> TempoMap:
        """The tempo in ticks of ``ticks_per_beat`` (a multiple of 16): each set_tempo
        event's tempo as decoded MIDI holds it, from its step on, in event order."""
        tempo = self.is_event("set_tempo")
        ticks = self.step[tempo] * (ticks_per_beat // vocab.STEPS_PER_BEAT)
        bpms = self.column("bpm")[tempo].tolist()
        return TempoMap.from_changes(ticks_per_beat, [(t, bpm_to_tempo(b)) for t, b in zip(ticks.tolist(), bpms, strict=True)])

    def onset_seconds(self) -> np.ndarray:
        """Seconds from the start to each event's onset."""
        return self.tempo_map().to_seconds(self.step)
