"""Music statistics of one piece, as fixed-length feature vectors.

These are the per-piece features that :mod:`midilm.evaluate.compare` sets
against each other (after Yang & Lerch, "On the evaluation of generative models
in music", 2020). Pitch features read pitched notes only (a drum note's pitch
names an instrument); rhythm and velocity features read every note. A feature
that a piece cannot have (a pitch range without notes) is NaN, and the
comparison leaves that piece out of that feature.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from midilm.notes import Notes

DURATION_BIN_EDGES_BEATS = np.concatenate([[0.0], 2.0 ** (np.arange(-3, 4) - 0.5), [np.inf]])
"""Note-length classes centred (geometrically) on 1/8, 1/4, 1/2, 1, 2 and 4 beats,
plus one class for shorter and one for longer notes: 8 bins."""
DURATION_BIN_LABELS = ("<1/8", "1/8", "1/4", "1/2", "1", "2", "4", ">4")
VELOCITY_BIN_WIDTH = 16
"""Velocity classes 0-15, 16-31, ..., 112-127: 8 bins."""
PITCH_CLASS_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def _normalised(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.full(len(counts), np.nan)


def pitch_class_histogram(notes: Notes) -> np.ndarray:
    """Share of pitched notes in each of the 12 pitch classes (C first)."""
    return _normalised(np.bincount(notes.pitched["pitch"] % 12, minlength=12).astype(np.float64))


def pitch_range(notes: Notes) -> np.ndarray:
    """Highest minus lowest pitched note, in semitones."""
    pitches = notes.pitched["pitch"].astype(np.int64)
    return np.array([pitches.max() - pitches.min() if len(pitches) else np.nan], dtype=np.float64)


def polyphony(notes: Notes) -> np.ndarray:
    """Mean number of pitched notes sounding together, over the time when at
    least one sounds: total note-seconds divided by sounding seconds."""
    table = notes.pitched
    starts, ends = table["start_seconds"], table["end_seconds"]
    times = np.concatenate([starts, ends])
    steps = np.concatenate([np.ones(len(starts)), -np.ones(len(ends))])
    order = np.argsort(times, kind="stable")
    sounding = np.cumsum(steps[order])[:-1] > 0
    sounding_seconds = float(np.diff(times[order])[sounding].sum()) if len(times) else 0.0
    return np.array([(ends - starts).sum() / sounding_seconds if sounding_seconds > 0 else np.nan])


def note_density(notes: Notes) -> np.ndarray:
    """Notes per second, from the first onset to the end of the last note."""
    table = notes.table
    span = notes.seconds - float(table["start_seconds"].min()) if len(table) else 0.0
    return np.array([len(table) / span if span > 0 else np.nan])


def inter_onset_interval(notes: Notes) -> np.ndarray:
    """Mean time in seconds between successive distinct onsets (chords count once)."""
    onsets = np.unique(notes.table["start_seconds"])
    return np.array([np.diff(onsets).mean() if len(onsets) >= 2 else np.nan])


def duration_histogram(notes: Notes) -> np.ndarray:
    """Share of pitched notes in each note-length class (:data:`DURATION_BIN_LABELS`), lengths in beats."""
    table = notes.pitched
    beats = table["end_beats"] - table["start_beats"]
    return _normalised(np.histogram(beats, bins=DURATION_BIN_EDGES_BEATS)[0].astype(np.float64))


def velocity_histogram(notes: Notes) -> np.ndarray:
    """Share of notes in each velocity class of width :data:`VELOCITY_BIN_WIDTH`."""
    classes = notes.table["velocity"] // VELOCITY_BIN_WIDTH
    return _normalised(np.bincount(classes, minlength=128 // VELOCITY_BIN_WIDTH).astype(np.float64))


FEATURES: dict[str, Callable[[Notes], np.ndarray]] = {
    "pitch_class_histogram": pitch_class_histogram,
    "pitch_range": pitch_range,
    "polyphony": polyphony,
    "note_density": note_density,
    "inter_onset_interval": inter_onset_interval,
    "duration_histogram": duration_histogram,
    "velocity_histogram": velocity_histogram,
}
"""Feature name -> function of a piece's notes returning a 1-D float vector."""

FEATURE_UNITS: dict[str, str] = {
    "pitch_class_histogram": "share of notes per pitch class",
    "pitch_range": "semitones",
    "polyphony": "notes sounding together",
    "note_density": "notes per second",
    "inter_onset_interval": "seconds",
    "duration_histogram": "share of notes per length class",
    "velocity_histogram": "share of notes per velocity class",
}


def piece_features(pieces: list[Notes]) -> dict[str, np.ndarray]:
    """Each feature of each piece: name -> array ``[n_pieces, feature_length]``."""
    return {name: np.stack([feature(notes) for notes in pieces]) if pieces else np.empty((0, 0)) for name, feature in FEATURES.items()}
