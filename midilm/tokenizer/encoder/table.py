"""The batch the encoder works on, and hand-built scores made into its table.

The encoder's table is a :class:`~midilm.tokenizer.columns.Columns` of the
batch's files, file after file, each in the reference's event-list order
(every step keeps that order, so that the row order breaks every tie the way
the reference's stable sort does). ``time`` holds 1/16 beats from the start
after step 1, the params hold token values (channel, pitch, velocity,
duration of a note; bpm of a tempo; nn - 1, dd - 1 of a time signature;
sf + 7, mi of a key signature), and ``file`` leads every grouping and sort
key of a batch of several files, so that files never mix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from midilm.errors import MidiFileError
from midilm.tokenizer.columns import FIELDS, Columns, index_dtype
from midilm.tokenizer.report import TokenizeReport
from midilm.tokenizer.score import KEY_SIG, KIND, N_COLUMNS, NOTE, PARAM0, PARAM_COUNT, TRACK, MidiScore

MAX_TICKS = 1 << 48
_PARAM_COUNT = np.array(PARAM_COUNT)
"""Larger times would lose exactness in float64 (the reference's arithmetic)."""


class Batch:
    """The files of a batch: their ticks per beat, and their reports, which
    count drops and additions by file. A batch of one file skips the
    bookkeeping by file (its keys leave the file out)."""

    def __init__(self, reports: list[TokenizeReport], ticks_per_beat: Sequence[float]) -> None:
        self.reports = reports
        self.count = len(reports)
        self.single = self.count == 1
        self.ticks_per_beat = np.array(ticks_per_beat, np.float64)

    def drop(self, reason: str, file: np.ndarray, which: np.ndarray) -> None:
        """Count one drop for ``reason`` per event selected by ``which`` (a
        mask or indices into ``file``, each event's file)."""
        for report, count in self._per_file(file, which):
            report.drop(reason, count)

    def add(self, reason: str, file: np.ndarray, which: np.ndarray) -> None:
        for report, count in self._per_file(file, which):
            report.add(reason, count)

    def _per_file(self, file: np.ndarray, which: np.ndarray) -> list[tuple[TokenizeReport, int]]:
        count = int(np.count_nonzero(which)) if which.dtype == bool else len(which)
        if not count:
            return []
        if self.single:
            return [(self.reports[0], count)]
        counts = np.bincount(file[which], minlength=self.count)
        return [(self.reports[f], int(counts[f])) for f in counts.nonzero()[0].tolist()]

    def keys(self, file: np.ndarray, *columns: np.ndarray) -> tuple[np.ndarray, ...]:
        """Grouping or sort keys: the file first, unless the batch is one file."""
        return columns if self.single else (file, *columns)

    def file_key(self, file: np.ndarray, value: np.ndarray, size: int) -> np.ndarray:
        """``file * size + value``: a value numbered across the batch."""
        return value if self.single else file.astype(np.int64) * size + value


def score_columns(scores: Sequence[MidiScore]) -> Columns:
    """The score tables of plausible scores as one table, tracks in order
    within each file (the list form's order), the values as given (int64)."""
    tables = [score.events for score in scores]
    for at, table in enumerate(tables):
        track = table[:, TRACK]
        if len(track) > 1 and (track[1:] < track[:-1]).any():
            tables[at] = table[np.argsort(track, kind="stable")]
    joined = np.concatenate(tables) if tables else np.zeros((0, N_COLUMNS), np.int64)
    fields = [np.ascontiguousarray(joined[:, at], np.int64) for at in range(N_COLUMNS)]
    for slot, param in enumerate(fields[PARAM0:]):  # a kind's unused params are not part of it
        param *= slot < _PARAM_COUNT[fields[KIND].clip(NOTE, KEY_SIG)]
    file = np.repeat(np.arange(len(tables), dtype=index_dtype(len(tables))), [len(t) for t in tables])
    assert len(fields) + 1 == len(FIELDS)
    return Columns(*fields, file)


def is_table(events: object) -> bool:
    """Whether ``events`` is a score table: integers, [n, N_COLUMNS]."""
    return isinstance(events, np.ndarray) and events.ndim == 2 and events.shape[1] == N_COLUMNS and events.dtype.kind in "iu"


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


def append_events(events: Columns, new: list[tuple[int, ...]]) -> None:
    """Append events (tuples of ``FIELDS`` values) at the end of the
    reference's event list (of their file: every later step sorts or groups
    by file first)."""
    if new:
        events.extend(np.array(new, np.int64).T)
