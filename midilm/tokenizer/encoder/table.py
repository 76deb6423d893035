"""The encoder's working table and the batch it holds.

The table holds the score table's columns (:mod:`midilm.tokenizer.score`) as
its rows, ``events[TIME]`` being one contiguous array (column operations are
several times faster so), and ``events[:, i]`` is event ``i`` (gathered with
``take`` and ``compress``, which copy such a table faster than fancy
indexing). TIME replaces TICK (1/16 beats from the start), PARAM0..3 hold
token values (channel, pitch, velocity, duration of a note; bpm of a tempo;
nn - 1, dd - 1 of a time signature; sf + 7, mi of a key signature), POSITION
is the event's place in the reference's event list, which breaks every tie
the way the reference's stable sort does, and FILE is the file's index in the
batch: every grouping and sort key starts with it, so files never mix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from midilm.errors import MidiFileError
from midilm.tokenizer.report import TokenizeReport
from midilm.tokenizer.score import KEY_SIG, KIND, N_COLUMNS, NOTE, TICK, TRACK, MidiScore

TIME = TICK
"""The time field: ticks in a score, 1/16 steps in the working table."""
POSITION = 7
FILE = 8
WIDTH = 9
"""Fields of the working table (its rows): the score table's, then these two."""

MAX_TICKS = 1 << 48
"""Larger times would lose exactness in float64 (the reference's arithmetic)."""
TRACK_BITS = 12
"""``FILE << TRACK_BITS | TRACK`` names a track across the batch (renumbered tracks stay below 16 * 128)."""


def is_table(events: object) -> bool:
    """Whether ``events`` is a score table: integers, [n, N_COLUMNS]."""
    return isinstance(events, np.ndarray) and events.ndim == 2 and events.shape[1] == N_COLUMNS and events.dtype.kind in "iu"


def working_table(tables: list[np.ndarray]) -> np.ndarray:
    """The score tables of a batch as one working table (POSITION not yet set)."""
    lengths = [len(table) for table in tables]
    events = np.empty((WIDTH, sum(lengths)), np.int64)
    if tables:
        np.concatenate([table.T for table in tables], axis=1, out=events[:N_COLUMNS])
    events[FILE] = np.repeat(np.arange(len(tables)), lengths)
    return events


def plausible(events: np.ndarray, scores: Sequence[MidiScore]) -> bool:
    """Whether every score passes :func:`check_score` (as every score read from a
    file does), tested on the whole batch at once."""
    if not events.shape[1]:
        return True
    if any(score.ticks_per_beat <= 0 for score in scores if len(score.events)):
        return False
    values = events[:N_COLUMNS]
    if values.max() >= MAX_TICKS or values.min() <= -MAX_TICKS:
        return False
    kind, track = events[KIND], events[TRACK]
    if kind.min() < NOTE or kind.max() > KEY_SIG or track.min() < 0:
        return False
    return not (track >= np.array([score.tracks for score in scores])[events[FILE]]).any()


def check_score(score: MidiScore, source: str | None) -> None:
    """Refuse a score whose numbers no MIDI file gives."""
    table = score.events
    if not is_table(table):
        raise MidiFileError(
            source, f"a score's events are an integer table [n, {N_COLUMNS}], not {type(table).__name__} {getattr(table, 'shape', '')}"
        )
    if not len(table):
        return
    if score.ticks_per_beat <= 0:
        raise MidiFileError(source, f"ticks per beat is {score.ticks_per_beat}")
    low, high = table.min(axis=0).tolist(), table.max(axis=0).tolist()
    if min(low) <= -MAX_TICKS or max(high) >= MAX_TICKS:
        raise MidiFileError(source, "event times or values beyond 2**48: not a plausible score")
    if low[KIND] < NOTE or high[KIND] > KEY_SIG or low[TRACK] < 0 or high[TRACK] >= score.tracks:
        raise MidiFileError(
            source,
            f"events of kinds {low[KIND]}..{high[KIND]} on tracks {low[TRACK]}..{high[TRACK]}: expected kinds 0..5 on tracks 0..{score.tracks - 1}",
        )


class Batch:
    """The files of a batch: their ticks per beat, and their reports, which
    count drops and additions by file."""

    def __init__(self, reports: list[TokenizeReport], ticks_per_beat: list[float]) -> None:
        self.reports = reports
        self.count = len(reports)
        self.ticks_per_beat = np.array(ticks_per_beat, np.float64)

    def drop(self, reason: str, files: np.ndarray) -> None:
        """Count one drop for ``reason`` per entry of ``files`` (file indices)."""
        for report, count in self._per_file(files):
            report.drop(reason, count)

    def add(self, reason: str, files: np.ndarray) -> None:
        for report, count in self._per_file(files):
            report.add(reason, count)

    def _per_file(self, files: np.ndarray) -> list[tuple[TokenizeReport, int]]:
        if not len(files):
            return []
        if self.count == 1:
            return [(self.reports[0], len(files))]
        counts = np.bincount(files, minlength=self.count)
        return [(self.reports[file], int(counts[file])) for file in counts.nonzero()[0].tolist()]


def track_key(events: np.ndarray) -> np.ndarray:
    """Each event's track, named across the batch."""
    return (events[FILE] << TRACK_BITS) | events[TRACK]


def append_events(events: np.ndarray, new: list) -> np.ndarray:
    """Append events at the end of the reference's event list (of their
    file: every later step sorts or groups by file first)."""
    if not new:
        return events
    start = int(events[POSITION].max()) + 1 if events.shape[1] else 0
    added = np.array(new, np.int64).reshape(-1, WIDTH).T
    added[POSITION] = np.arange(start, start + added.shape[1])
    return np.concatenate([events, added], axis=1)
