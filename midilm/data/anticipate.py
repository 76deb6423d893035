"""Training examples for anticipation: a window's rows with some events kept and
written ahead of their time (the rule of :mod:`midilm.anticipation`).

Each window is, at random (seeded per item, so a resumed run sees the same data):

- left as it is (a quarter of the windows), so the model still continues music plainly;
- *tracks* kept (two fifths): a random proper subset of its note tracks, as in
  accompaniment; the other tracks are the part the model learns to write;
- a *span* kept around (the rest): from a random onset S, 4 to 32 beats are
  written by the model (all tracks, or a random subset) and the music after the
  span is kept, as in infilling; the music before S stays ordinary.

Tempo, time and key signatures are kept whenever anything is. A window whose
kept set is empty or everything, or whose rows do not fit the tokens once
rearranged (a gap of 128 beats or more), is left as it is.
"""

from __future__ import annotations

import numpy as np

from midilm import anticipation, vocab

PLAIN_SHARE = 0.25
TRACKS_SHARE = 0.40
SPAN_BEATS = (4, 32)
STEPS_PER_BEAT = vocab.PARAM_SIZES["time2"]
_META_IDS = [vocab.EVENT_ID[name] for name in ("set_tempo", "time_signature", "key_signature")]
_NOTE = vocab.EVENT_ID["note"]
_TRACK_SLOT = 1 + vocab.EVENT_PARAMS["note"].index("track")


def anticipation_example(rows: np.ndarray, delta: int, rng: np.random.Generator) -> np.ndarray:
    """``rows`` [n, 8] (a window: maybe BOS first, events, maybe EOS and PAD last)
    rearranged with kept events anticipated by ``delta`` 1/16 beats; same shape."""
    events = np.flatnonzero((rows[:, 0] >= vocab.FIRST_EVENT_ID) & (rows[:, 0] <= vocab.LAST_EVENT_ID))
    if len(events) < 2 or rng.random() < PLAIN_SHARE or events[-1] - events[0] + 1 != len(events):
        return rows
    window = rows[events]
    onsets = np.cumsum(window[:, 1] - vocab.PARAM_OFFSET["time1"]) * STEPS_PER_BEAT + window[:, 2] - vocab.PARAM_OFFSET["time2"]
    kept = _kept_events(window, onsets, rng)
    if kept.all() or not kept.any():
        return rows
    arranged = anticipation.interleave_all(window[~kept], onsets[~kept], window[kept], onsets[kept], delta)
    if arranged is None:
        return rows
    out = rows.copy()
    out[events] = arranged
    return out


def _kept_events(window: np.ndarray, onsets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Which events of a window are kept (see the module doc)."""
    track = window[:, _TRACK_SLOT].astype(np.int64)
    meta = np.isin(window[:, 0], _META_IDS)
    note_tracks = np.unique(track[window[:, 0] == _NOTE])
    if len(note_tracks) >= 2 and rng.random() < TRACKS_SHARE / (1 - PLAIN_SHARE):
        chosen = rng.choice(note_tracks, size=int(rng.integers(1, len(note_tracks))), replace=False)
        return meta | np.isin(track, chosen)
    start = int(rng.integers(int(onsets[0]), int(onsets[-1]) + 1))
    end = start + int(rng.integers(SPAN_BEATS[0], SPAN_BEATS[1] + 1)) * STEPS_PER_BEAT
    written = note_tracks
    if len(note_tracks) >= 2 and rng.random() < 0.5:
        written = rng.choice(note_tracks, size=int(rng.integers(1, len(note_tracks) + 1)), replace=False)
    in_span = (onsets >= start) & (onsets < end)
    return meta | (onsets >= end) | (in_span & ~np.isin(track, written))
