"""Onset times of token rows in seconds, kept incrementally while sampling.

v2 rows carry ``time1`` (whole beats since the previous event) and ``time2``
(the 1/16-beat position inside the beat); tempo events change the seconds per
beat from their own onset on. 120 bpm holds until the first tempo event, and a
tempo of 0 counts as 1 bpm, as the decoder does.
"""

from __future__ import annotations

import numpy as np

from midilm import vocab

_TIME1 = vocab.PARAM_OFFSET["time1"]
_TIME2 = vocab.PARAM_OFFSET["time2"]
_BPM = vocab.PARAM_OFFSET["bpm"]
_TEMPO = vocab.EVENT_ID["set_tempo"]
DEFAULT_BPM = 120


class MusicClock:
    """Per-sample position (in 1/16 beats and seconds) of the latest event."""

    def __init__(self, n_samples: int) -> None:
        self.beats_whole = np.zeros(n_samples, dtype=np.int64)
        self.sixteenths = np.zeros(n_samples, dtype=np.int64)
        self.seconds = np.zeros(n_samples, dtype=np.float64)
        self.bpm = np.full(n_samples, DEFAULT_BPM, dtype=np.float64)

    def advance(self, rows: np.ndarray, active: np.ndarray | None = None) -> None:
        """Move each (active) sample to the onset of its row in ``rows`` [B, 8];
        rows that are not events (BOS, EOS, PAD) leave the clock where it is."""
        event = (rows[:, 0] >= vocab.FIRST_EVENT_ID) & (rows[:, 0] <= vocab.LAST_EVENT_ID)
        if active is not None:
            event &= active
        whole = self.beats_whole + np.where(event, rows[:, 1].astype(np.int64) - _TIME1, 0)
        position = np.where(event, whole * 16 + rows[:, 2].astype(np.int64) - _TIME2, self.sixteenths)
        self.seconds += (position - self.sixteenths) / 16 * 60 / self.bpm
        self.beats_whole, self.sixteenths = whole, position
        tempo = event & (rows[:, 0] == _TEMPO)
        self.bpm = np.where(tempo, np.maximum(rows[:, 4].astype(np.int64) - _BPM, 1), self.bpm)


def onset_seconds(rows: np.ndarray) -> np.ndarray:
    """Onset in seconds of every row of one token array [n, 8]."""
    clock = MusicClock(1)
    out = np.zeros(len(rows))
    for i, row in enumerate(rows):
        clock.advance(row[None, :])
        out[i] = clock.seconds[0]
    return out
