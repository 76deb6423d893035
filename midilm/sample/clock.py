"""Onset times of token rows in seconds, kept incrementally while sampling.

Rows are read by the tokenizer's one event parser
(:mod:`midilm.tokenizer.events`) and time is converted by its one tempo
integration (:mod:`midilm.tokenizer.tempo`): ``time1`` counts whole beats
since the previous event, ``time2`` the 1/16-beat step inside the beat, and a
tempo event changes the seconds per beat from its own onset on (120 bpm before
the first; a tempo of 0 counts as 1 bpm, as the decoder does).
"""

from __future__ import annotations

import numpy as np

from midilm import vocab
from midilm.tokenizer.events import EventTable, parse_rows
from midilm.tokenizer.tempo import DEFAULT_US_PER_BEAT, bpm_to_tempo, span_seconds


class MusicClock:
    """Per-sample position (in 1/16 beats and seconds) of the latest event."""

    def __init__(self, n_samples: int) -> None:
        self.steps = np.zeros(n_samples, dtype=np.int64)
        self.seconds = np.zeros(n_samples, dtype=np.float64)
        self.us_per_beat = np.full(n_samples, DEFAULT_US_PER_BEAT, dtype=np.float64)

    def advance(self, rows: np.ndarray, active: np.ndarray | None = None) -> None:
        """Move each (active) sample to the onset of its row in ``rows`` [B, 8];
        rows that are not events (BOS, EOS, PAD, invalid rows) leave the clock where it is."""
        is_event, values = parse_rows(rows)
        if active is not None:
            is_event &= active
        beats = self.steps // vocab.STEPS_PER_BEAT + values[:, vocab.TIME1_SLOT]
        position = np.where(is_event, beats * vocab.STEPS_PER_BEAT + values[:, vocab.TIME2_SLOT], self.steps)
        self.seconds = self.seconds + span_seconds(position - self.steps, self.us_per_beat, vocab.STEPS_PER_BEAT)
        self.steps = position
        tempo = is_event & (values[:, vocab.EVENT_SLOT] == vocab.EVENT_ID["set_tempo"])
        for sample in np.flatnonzero(tempo).tolist():
            self.us_per_beat[sample] = bpm_to_tempo(int(values[sample, vocab.PARAM_SLOT["bpm"]]))


def onset_seconds(rows: np.ndarray) -> np.ndarray:
    """Onset in seconds of every row of one token array [n, 8] (a row that is
    not an event has the onset of the event before it, 0 before the first)."""
    events = EventTable.of(rows)
    onsets = np.zeros(len(events) + 1)
    onsets[1:] = events.onset_seconds()
    # each row takes the onset of the last event at or before it
    return onsets[np.searchsorted(events.rows, np.arange(len(rows)), side="right")]
