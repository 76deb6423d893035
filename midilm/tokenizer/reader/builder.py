"""Messages -> the score's events, piece by piece, in the reference's score order.

A piece holds the messages of a stretch of the batch (:mod:`.messages`);
tracks are found by position. A track cut by the end of a piece goes on in
the next one: its tick, its running status and its open notes are carried
over (:class:`_Carry`), so that the pieces together give exactly what one
piece of the whole batch would, while memory holds one piece's working
arrays at a time.

Score order (the reference's): a setting where it is, a note where its
note-off is; notes never closed end at the track's last tick and follow the
track's other events, grouped by key in the order each key was first opened.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from midilm.tokenizer.columns import KIND_DTYPE, PARAM0_DTYPE, SMALL_DTYPE, Columns, index_dtype
from midilm.tokenizer.reader.messages import CODE, DELTA, POSITION, A, B
from midilm.tokenizer.reader.notes import PITCH_KEYS, pair_notes
from midilm.tokenizer.reader.scan import META, OTHER, RUNNING
from midilm.tokenizer.score import CONTROL, DEFAULT_32NDS_PER_BEAT, DEFAULT_CLOCKS_PER_CLICK, KEY_SIG, NOTE, PATCH, TEMPO, TIME_SIG

MAX_TRACK_TICKS = 1 << 40
"""A track this long is refused (it takes 4,096 delta times of the largest
4-byte quantity), which keeps every tick exact in int64 and float64 arithmetic."""

_ON, _OFF, _IGNORED = 6, 7, -1
_MESSAGE_KIND = np.full(OTHER + 1, _IGNORED, np.intp)  # lookups by an index of the machine's size are the fast ones
"""Status byte (or code) -> score kind, or _ON / _OFF for note messages."""
_MESSAGE_KIND[0x80:0x90] = _OFF
_MESSAGE_KIND[0x90:0xA0] = _ON
_MESSAGE_KIND[0xB0:0xC0] = CONTROL
_MESSAGE_KIND[0xC0:0xD0] = PATCH
_MESSAGE_KIND[META | 0x51] = TEMPO
_MESSAGE_KIND[META | 0x58] = TIME_SIG
_MESSAGE_KIND[META | 0x59] = KEY_SIG

# what a row takes from the message it comes from, by that message's kind (notes: _ON)
_ROW_KIND = np.array([NOTE, PATCH, CONTROL, TEMPO, TIME_SIG, KEY_SIG, NOTE], KIND_DTYPE)
_IS_META = np.zeros(_ON + 1, bool)
_IS_META[[TEMPO, TIME_SIG, KEY_SIG]] = True
"""Meta events keep their two values in param0 and param1; channel messages put their channel first."""
_PARAM2_IS_B = np.zeros(_ON + 1, bool)
_PARAM2_IS_B[[CONTROL, _ON]] = True
_PARAM2_FIXED = np.zeros(_ON + 1, np.int64)
_PARAM2_FIXED[TIME_SIG] = DEFAULT_CLOCKS_PER_CLICK
_PARAM3_FIXED = np.zeros(_ON + 1, np.int64)
_PARAM3_FIXED[TIME_SIG] = DEFAULT_32NDS_PER_BEAT

NEVER = np.iinfo(np.int64).max
"""First-opened ordinal of a key not opened yet."""


@dataclass
class _Carry:
    """A track cut by the end of a piece: what the next piece needs of it.
    Its open notes are in file order; ordinals number messages across pieces."""

    track: int
    tick: int
    status: int
    """Its last explicit channel status (0: none yet)."""
    ordinal: np.ndarray
    tick_on: np.ndarray
    channel: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    first_open: np.ndarray
    """Ordinal of each pitch key's first note-on in the track, or :data:`NEVER`."""


@dataclass
class _Piece:
    """A piece's messages as the rows need them: the carried track's open
    notes are appended after the messages (``carried`` of them), with kind
    ``_ON``, so that a note's values are found at one index either way."""

    count: int
    carried: int
    track: np.ndarray
    tick: np.ndarray
    kind: np.ndarray
    channel: np.ndarray
    a: np.ndarray
    b: np.ndarray


class ScoreBuilder:
    """Gathers the score events of a batch's pieces (:meth:`add`, in order) into one table."""

    def __init__(self, track_starts: np.ndarray, track_files: np.ndarray, file_first_track: np.ndarray, smpte_files: np.ndarray) -> None:
        self.track_starts = track_starts
        self.track_ids = np.arange(len(track_starts))
        self.track_files = track_files.astype(index_dtype(len(file_first_track)))
        self.track_numbers = (np.arange(len(track_files)) - file_first_track[track_files]).astype(index_dtype(len(track_files)))
        """Each batch track's number in its file."""
        self.smpte_tracks = smpte_files[track_files] if smpte_files.any() else None
        self.parts: list[Columns] = []
        self.smpte_tempos = np.zeros(len(file_first_track), np.int64)
        """Tempo events dropped per file (SMPTE timing)."""
        self.overlong: dict[int, int] = {}
        """File -> its longest track's ticks, for files with a track of :data:`MAX_TRACK_TICKS` or more."""
        self.ordinals = 0
        self.carry: _Carry | None = None

    @property
    def open_notes(self) -> int:
        """Notes the next piece carries in."""
        return len(self.carry.ordinal) if self.carry is not None else 0

    def finish(self) -> Columns:
        """The events of every piece added, in score order."""
        if self.carry is not None:
            self._close_carry()
        if not self.parts:
            return Columns.empty()
        return Columns.concatenate(self.parts)

    def add(self, messages: np.ndarray, last: bool) -> None:
        """The events of the next piece's messages (rows ``[5, m]``, see
        :mod:`.messages`); unless it is the ``last`` piece, its last track may
        go on in the next one."""
        count = messages.shape[1]
        if not count:
            return
        # each track's messages follow its start: the first message at or after each track's start
        first_message = np.searchsorted(messages[POSITION], self.track_starts)
        lengths = np.empty(len(first_message), np.int64)
        np.subtract(first_message[1:], first_message[:-1], out=lengths[:-1])
        lengths[-1] = count - first_message[-1]
        track = np.repeat(self.track_ids, lengths)
        carry, self.carry = self.carry, None
        if carry is not None and carry.track != track[0]:
            self.carry = carry
            self._close_carry()
            carry = None
        delta, code = messages[DELTA], messages[CODE]

        # ticks from each track's start; a carried track goes on from its tick
        track_start = (track[1:] != track[:-1]).nonzero()[0] + 1
        tick = delta.cumsum()
        segment_last = np.empty(len(track_start) + 1, np.int64)
        np.subtract(track_start, 1, out=segment_last[:-1])
        segment_last[-1] = count - 1
        if len(track_start) or carry is not None:
            restart = np.empty(len(segment_last), np.int64)
            restart[0] = -carry.tick if carry is not None else 0
            restart[1:] = tick[segment_last[:-1]]
            lengths = segment_last.copy()
            lengths[1:] -= segment_last[:-1]
            lengths[0] += 1
            tick -= np.repeat(restart, lengths)
        segment_track, segment_tick = track[segment_last], tick[segment_last]
        if segment_tick.max() >= MAX_TRACK_TICKS:
            for file, ticks in zip(self.track_files[segment_track].tolist(), segment_tick.tolist(), strict=True):
                if ticks >= MAX_TRACK_TICKS:
                    self.overlong[file] = max(ticks, self.overlong.get(file, 0))

        # a message in running status has the status of the last explicit one before it (in its track)
        running = code == RUNNING
        if running.any():
            explicit = np.where((code > RUNNING) & (code < META), np.arange(1, count + 1), 0)
            carried_status = carry.status if carry is not None else RUNNING
            status = np.where(running, np.append(carried_status, code)[np.maximum.accumulate(explicit)], code)
        else:
            status = code
        kind = _MESSAGE_KIND[status]
        if self.smpte_tracks is not None:
            tempo = (kind == TEMPO) & self.smpte_tracks[track]
            if tempo.any():
                self.smpte_tempos += np.bincount(self.track_files[track[tempo]], minlength=len(self.smpte_tempos))
                kind[tempo] = _IGNORED
        piece = _Piece(count, 0, track, tick, kind, status & 0x0F, messages[A], messages[B])

        # note entries: the carried open notes, then the note messages, in file order
        note_at = (kind >= _ON).nonzero()[0]
        entry = note_at
        entry_track = track[note_at] - track[0]
        is_on = (kind[note_at] == _ON) & (piece.b[note_at] != 0)
        ordinal = self.ordinals + note_at
        if carry is not None and len(carry.ordinal):
            piece = _with_carried(piece, carry)
            carried = np.arange(count, count + piece.carried)
            entry = np.concatenate([carried, note_at])
            entry_track = np.concatenate([np.zeros(piece.carried, np.int64), entry_track])
            is_on = np.concatenate([np.ones(piece.carried, bool), is_on])
            ordinal = np.concatenate([carry.ordinal, ordinal])
        pitch_key = piece.channel[entry] * 128 + piece.a[entry]
        closed_on, closed_off, open_on, open_first = pair_notes(entry_track, pitch_key, is_on)

        # rows in score order: settings where they are, notes where their note-off is
        row_here = (kind - PATCH).view(np.uint64) <= KEY_SIG - PATCH  # as unsigned, negative kinds are too large
        off_at = entry[closed_off]
        row_here[off_at] = True
        source = np.arange(count)
        source[off_at] = entry[closed_on]
        row_at = row_here.nonzero()[0]
        row_track = track[row_at]
        rows = self._columns(piece, source[row_at], piece.tick[row_at], row_track)

        staying = np.zeros(0, np.int64)
        if not last:  # the last track's open notes go on into the next piece
            goes_on = entry_track[open_on] == track[-1] - track[0]
            staying, open_on, open_first = open_on[goes_on], open_on[~goes_on], open_first[~goes_on]
        if len(open_on):
            rank = ordinal[open_first]
            if carry is not None:  # a key of the carried track may have been opened first in an earlier piece
                earlier = carry.first_open[pitch_key[open_on]]
                rank = np.where(entry_track[open_on] == 0, np.minimum(earlier, rank), rank)
            open_track = track[0] + entry_track[open_on]
            end_tick = segment_tick[np.searchsorted(segment_track, open_track)]
            unclosed = self._unclosed(piece, entry[open_on], end_tick, open_track, rank, ordinal[open_on])
            rows = _insert_after_tracks(rows, row_track, unclosed, np.sort(open_track))
        self.parts.append(rows)
        if not last:
            self.carry = self._carry_out(piece, code, segment_tick[-1], entry, entry_track, is_on, pitch_key, ordinal, staying, carry)
        self.ordinals += count

    def _columns(self, piece: _Piece, source: np.ndarray, end_tick: np.ndarray, track: np.ndarray) -> Columns:
        """Rows whose values come from the messages (or carried notes) at
        ``source``, on batch tracks ``track``; a note lasts until ``end_tick``."""
        kind = piece.kind[source]
        tick, a, b = piece.tick[source], piece.a[source], piece.b[source]
        meta = _IS_META[kind]
        return Columns(
            kind=_ROW_KIND[kind],
            time=tick,
            track=self.track_numbers[track],
            param0=np.where(meta, a, piece.channel[source]).astype(PARAM0_DTYPE),
            param1=np.where(meta, b, a).astype(SMALL_DTYPE),
            param2=np.where(_PARAM2_IS_B[kind], b, _PARAM2_FIXED[kind]).astype(SMALL_DTYPE),
            param3=(end_tick - tick) + _PARAM3_FIXED[kind],
            file=self.track_files[track],
        )

    def _unclosed(
        self, piece: _Piece, source: np.ndarray, end_tick: np.ndarray, track: np.ndarray, rank: np.ndarray, ordinal: np.ndarray
    ) -> Columns:
        """Rows of notes never closed, by track, then by the rank of their key
        (first opened first), then oldest first; each ends at ``end_tick``."""
        order = np.lexsort((ordinal, rank, track))
        return self._columns(piece, source[order], end_tick[order], track[order])

    def _carry_out(
        self,
        piece: _Piece,
        code: np.ndarray,
        tick: int,
        entry: np.ndarray,
        entry_track: np.ndarray,
        is_on: np.ndarray,
        pitch_key: np.ndarray,
        ordinal: np.ndarray,
        staying: np.ndarray,
        carry: _Carry | None,
    ) -> _Carry:
        """What the piece's last track takes into the next piece."""
        last_track = int(piece.track[piece.count - 1])
        same_track = carry is not None and carry.track == last_track
        track_codes = code[np.searchsorted(piece.track[: piece.count], last_track) :]
        explicit = ((track_codes > RUNNING) & (track_codes < META)).nonzero()[0]
        status = int(track_codes[explicit[-1]]) if len(explicit) else carry.status if same_track else RUNNING
        first_open = carry.first_open.copy() if same_track else np.full(PITCH_KEYS, NEVER, np.int64)
        opened = is_on & (entry_track == last_track - int(piece.track[0]))
        keys, first = np.unique(pitch_key[opened], return_index=True)
        first_open[keys] = np.minimum(first_open[keys], ordinal[opened][first])
        staying = np.sort(staying)
        source = entry[staying]
        return _Carry(
            track=last_track,
            tick=int(tick),
            status=status,
            ordinal=ordinal[staying],
            tick_on=piece.tick[source],
            channel=piece.channel[source],
            pitch=piece.a[source],
            velocity=piece.b[source],
            first_open=first_open,
        )

    def _close_carry(self) -> None:
        """The carried track ended with the last piece: its open notes follow its events."""
        carry, self.carry = self.carry, None
        assert carry is not None
        count = len(carry.ordinal)
        if not count:
            return
        piece = _Piece(
            0, count, np.full(count, carry.track), carry.tick_on, np.full(count, _ON, np.intp), carry.channel, carry.pitch, carry.velocity
        )
        rank = carry.first_open[carry.channel * 128 + carry.pitch]
        self.parts.append(self._unclosed(piece, np.arange(count), np.full(count, carry.tick), piece.track, rank, carry.ordinal))


def _with_carried(piece: _Piece, carry: _Carry) -> _Piece:
    """The piece with the carried open notes appended as note-on messages of its first track."""
    count = len(carry.ordinal)
    return _Piece(
        piece.count,
        count,
        np.append(piece.track, np.full(count, carry.track)),
        np.append(piece.tick, carry.tick_on),
        np.append(piece.kind, np.full(count, _ON, np.intp)),
        np.append(piece.channel, carry.channel),
        np.append(piece.a, carry.pitch),
        np.append(piece.b, carry.velocity),
    )


def _insert_after_tracks(rows: Columns, row_track: np.ndarray, extra: Columns, extra_track: np.ndarray) -> Columns:
    """``rows`` (on non-decreasing batch tracks ``row_track``) with each of
    ``extra`` (sorted by track) after the rows of its track, in order."""
    before = np.searchsorted(row_track, extra_track, side="right")
    # row i sorts at 2i + 1, an extra row inserted before row j at 2j: ties keep their order
    order = np.argsort(np.concatenate([np.arange(len(row_track)) * 2 + 1, before * 2]), kind="stable")
    return Columns.concatenate([rows, extra]).take(order)
