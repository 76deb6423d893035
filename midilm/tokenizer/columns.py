"""Events as one array per field: the table the reader writes and the encoder works on.

A field is one contiguous array (operations on a field are several times
faster than on a column of a row-major table), and each field has the
narrowest integer type its values allow, so that the table of a large file
stays a few times the file's size: only time and ``param3`` (a note's
duration in ticks) need 64 bits. The fields are those of the score table
(:mod:`midilm.tokenizer.score`) plus ``file``, the file's index in a batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FIELDS = ("kind", "time", "track", "param0", "param1", "param2", "param3", "file")
PARAM_FIELDS = FIELDS[3:7]

KIND_DTYPE = np.int8
TIME_DTYPE = np.int64
PARAM0_DTYPE = np.int32
"""param0 holds a tempo's microseconds per beat (24 bits); the other small fields hold bytes."""
SMALL_DTYPE = np.int16


def index_dtype(count: int) -> type[np.signedinteger]:
    """The narrow type of a field numbering ``count`` things (tracks, files)."""
    return np.int16 if count <= np.iinfo(np.int16).max else np.int32


NARROW_FROM = 1 << 12
"""Fields of tables this long or longer are narrowed once their values allow."""


def narrowed(values: np.ndarray, dtype: type[np.signedinteger]) -> np.ndarray:
    """``values`` as ``dtype`` when they fit in half its range (so that their
    differences fit too), else unchanged."""
    limit = np.iinfo(dtype).max // 2
    if len(values) < NARROW_FROM:
        return values  # small tables: memory does not matter, and this saves the checks
    if int(values.min()) < -limit or int(values.max()) > limit:
        return values
    return values.astype(dtype, copy=False)


class Columns:
    """A table of events, one array per field (:data:`FIELDS`), all of one length.

    ``time`` holds ticks in a score and 1/16 beats in the encoder, which
    narrows ``param3`` once durations are quantised, and ``time`` and
    ``param0`` of large tables once their values allow (:func:`narrowed`).
    """

    __slots__ = FIELDS

    def __init__(
        self,
        kind: np.ndarray,
        time: np.ndarray,
        track: np.ndarray,
        param0: np.ndarray,
        param1: np.ndarray,
        param2: np.ndarray,
        param3: np.ndarray,
        file: np.ndarray,
    ) -> None:
        self.kind = kind
        self.time = time
        self.track = track
        self.param0 = param0
        self.param1 = param1
        self.param2 = param2
        self.param3 = param3
        self.file = file

    def __len__(self) -> int:
        return len(self.kind)

    def arrays(self) -> tuple[np.ndarray, ...]:
        return tuple(getattr(self, name) for name in FIELDS)

    def take(self, index: np.ndarray) -> Columns:
        """The events at ``index`` (integer positions), in that order."""
        return Columns(*(array.take(index) for array in self.arrays()))

    def rows(self, start: int, stop: int) -> Columns:
        """The events from ``start`` to ``stop`` (views, not copies)."""
        return Columns(*(array[start:stop] for array in self.arrays()))

    def keep(self, rows: np.ndarray) -> None:
        """Keep only ``rows`` (a mask, or indices in the order wanted), in
        place: field by field, so that memory holds one field twice at most,
        and a caller holding this table does not keep the old fields alive."""
        for name in FIELDS:
            array = getattr(self, name)
            setattr(self, name, array.compress(rows) if rows.dtype == bool else array.take(rows))

    def extend(self, rows: np.ndarray) -> None:
        """Append events given as ``[len(FIELDS), n]`` values, in place."""
        for name, values in zip(FIELDS, rows, strict=True):
            array = getattr(self, name)
            setattr(self, name, np.concatenate([array, values.astype(array.dtype)]))

    @classmethod
    def empty(cls) -> Columns:
        """A table without events."""
        return cls(
            *(
                np.zeros(0, dtype)
                for dtype in (KIND_DTYPE, TIME_DTYPE, SMALL_DTYPE, PARAM0_DTYPE, SMALL_DTYPE, SMALL_DTYPE, TIME_DTYPE, SMALL_DTYPE)
            )
        )

    @classmethod
    def concatenate(cls, parts: Sequence[Columns]) -> Columns:
        """The parts one after another. Each part's fields are released as
        soon as they are copied, so that memory holds the parts and one whole
        field at most, not two tables."""
        if len(parts) == 1:
            return parts[0]
        fields = []
        for name in FIELDS:
            fields.append(np.concatenate([getattr(part, name) for part in parts]))
            for part in parts:
                setattr(part, name, None)
        return cls(*fields)

    def to_score_table(self) -> np.ndarray:
        """The score table ``[n, 7]`` (int64) of :class:`~midilm.tokenizer.score.MidiScore`."""
        table = np.empty((len(self), len(FIELDS) - 1), np.int64)
        for at, name in enumerate(FIELDS[:-1]):
            table[:, at] = getattr(self, name)
        return table
