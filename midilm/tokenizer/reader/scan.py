"""The only per-event Python of the reader: a file's bytes cut into runs and single events.

A *run* is a stretch of plain two-data-byte channel messages (notes, control
changes, pitch bends...), matched by a regular expression at C speed and
decoded later with numpy (:mod:`.messages`). Everything else (meta events,
sysex, program changes, corrupt data bytes, the end of a chunk) is a *single
event*, read by :func:`_read_event`, which states the reference's rules one
by one. Positions are offsets in the *batch*: the files of a batch laid one
after another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from midilm.errors import MidiFileError

_VLQ = rb"[\x80-\xff]{0,3}[\x00-\x7f]"
_STATUS_TWO_BYTES = rb"[\x80-\xbf\xe0-\xef]"
_EVENT_TWO_BYTES = _VLQ + _STATUS_TWO_BYTES + rb"?[\x00-\x7f]{2}"


def _compile_runs() -> tuple[re.Pattern, re.Pattern]:
    """The run patterns: atomic and possessive where the ``re`` module has them
    (Python >= 3.11; a message parses one way only, and this is ~20x faster
    than a backtracking repetition), plain repetition before."""
    try:
        return (
            re.compile(rb"(?>" + _EVENT_TWO_BYTES + rb")++"),
            re.compile(_VLQ + _STATUS_TWO_BYTES + rb"[\x00-\x7f]{2}(?>" + _EVENT_TWO_BYTES + rb")*+"),
        )
    except re.error:
        return (
            re.compile(rb"(?:" + _EVENT_TWO_BYTES + rb")+"),
            re.compile(_VLQ + _STATUS_TWO_BYTES + rb"[\x00-\x7f]{2}(?:" + _EVENT_TWO_BYTES + rb")*"),
        )


RUN_CONTINUING, RUN_FRESH = _compile_runs()
"""A run of two-data-byte channel messages that may start in running status;
the same starting with an explicit status (when running status is unset or
belongs to a one-data-byte message)."""

MAX_RUN_BYTES = 1 << 12
"""A run stops after this many bytes (the next one goes on in running status),
so that the numpy work can be cut into pieces between runs (:data:`~midilm.tokenizer.reader.PIECE_BYTES`)."""

RUNNING = 0
"""Code of a channel message in running status (its status is filled in later)."""
META = 0x100
"""Code base of meta events: ``META | type`` for tempo, time and key signatures."""
OTHER = 0x200
"""Code of every event the tokenizer ignores (text, sysex, End-of-Track...)."""

_NO_STATUS, _ONE_DATA_BYTE, _TWO_DATA_BYTES = 0, 1, 2
"""Running-status classes: what a data byte in running status means."""

_SMPTE_FRAMES_PER_SECOND = {29: 29.97}
"""SMPTE frame rates whose header byte is not the rate itself (-29 means 29.97 drop-frame)."""
SMPTE_BPM = 120
"""Tempo at which SMPTE (seconds-based) timing is converted to beats."""

MAX_VLQ_BYTES = 4
"""The MIDI standard's longest variable-length quantity (values below 2**28)."""

_SINGLE_STATUS = tuple(byte >= 0xF0 or 0xC0 <= byte < 0xE0 for byte in range(256))
"""Status bytes that cannot start a run (meta, sysex, system, one data byte)."""

_META_FIXED_BYTES = {0x51: 3, 0x58: 2, 0x59: 2, 0x54: 5}
"""Bytes the reference reads from these meta events whatever their length field says."""
_TEXT_META = tuple(meta_type > 0 and meta_type not in (*_META_FIXED_BYTES, 0x2F) for meta_type in range(256))
"""Meta types the tokenizer ignores and reads no fixed bytes of (texts, lyrics, names...), by type;
index 0 (also False) stands for "not a meta event"."""

SINGLE_FIELDS = 5
"""A single event's record: position, delta, code, a, b."""


class _Abort(Exception):
    """A data byte before any status byte: the reference discards the track."""


@dataclass
class FileHeader:
    """What the header and chunk layout of one file say."""

    source: str | None
    ticks_per_beat: float
    smpte: bool
    tracks: int
    warnings: list[str]
    first_track: int = 0
    """Index of the file's first track among the batch's tracks."""


class Records:
    """Flat integer records, grown in a Python list (the fastest append) and
    moved to an int64 array every :data:`FLUSH` numbers (a list of Python
    integers takes several times the memory)."""

    FLUSH = 1 << 16

    def __init__(self, width: int) -> None:
        self.width = width
        self.items: list[int] = []
        self.blocks: list[np.ndarray] = []
        self.flushed = 0

    def flush(self) -> None:
        self.blocks.append(np.array(self.items, np.int64))
        self.flushed += len(self.items)
        self.items = []

    def __len__(self) -> int:
        return self.flushed + len(self.items)

    def truncate(self, length: int) -> None:
        """Keep the first ``length`` numbers."""
        if length >= self.flushed:
            del self.items[length - self.flushed :]
            return
        blocks, kept = [], 0
        for block in self.blocks:
            if kept + len(block) >= length:
                blocks.append(block[: length - kept])
                break
            blocks.append(block)
            kept += len(block)
        self.blocks, self.flushed, self.items = blocks, length, []

    def array(self) -> np.ndarray:
        """The records as columns ``[width, count]``."""
        if self.items or not self.blocks:
            self.flush()
        flat = self.blocks[0] if len(self.blocks) == 1 else np.concatenate(self.blocks)
        self.blocks = [flat]
        return flat.reshape(-1, self.width).T


class Scan:
    """The runs and single events of the files scanned so far. A run is
    ``start, stop`` (batch positions of its bytes); a single event is
    ``position, delta, code, a, b``; a track is known by the position where
    its chunk's data starts, so the track of any event is found by position."""

    def __init__(self) -> None:
        self.files: list[bytes] = []
        self.file_starts: list[int] = []
        self.track_starts: list[int] = []
        self.track_files: list[int] = []
        self.runs = Records(2)
        self.singles = Records(SINGLE_FIELDS)
        self.size = 0

    def file(self, data: bytes, source: str | None) -> FileHeader:
        """Scan one file; on an error nothing of it is kept."""
        marks = len(self.runs), len(self.singles), len(self.track_starts)
        try:
            header = self._scan_file(data, source)
        except MidiFileError:
            self.runs.truncate(marks[0])
            self.singles.truncate(marks[1])
            del self.track_starts[marks[2] :], self.track_files[marks[2] :]
            raise
        header.first_track = marks[2]
        self.track_files += [len(self.files)] * header.tracks
        self.files.append(data)
        self.file_starts.append(self.size)
        self.size += len(data)
        return header

    def _scan_file(self, data: bytes, source: str | None) -> FileHeader:
        if len(data) < 4 or data[:4] != b"MThd":
            raise MidiFileError(source, "not a MIDI file (it does not start with an MThd header)")
        if len(data) < 14:
            raise MidiFileError(source, f"malformed header: the file is only {len(data)} bytes long")
        header_length = int.from_bytes(data[4:8], "big")
        if header_length != 6:
            raise MidiFileError(source, f"malformed header: its length field is {header_length}, expected 6")
        warnings: list[str] = []
        ticks_per_beat, smpte = _division(data[12:14], source, warnings)
        pos, track, size = 14, 0, len(data)
        while size - pos >= 8:
            chunk_type, length = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "big")
            if length > size - pos - 8:
                warnings.append(f"chunk {track} declares {length} bytes but only {size - pos - 8} remain: it is ignored")
                break
            if chunk_type != b"MTrk":
                warnings.append(f"chunk {track} has type {chunk_type!r}, not b'MTrk': read as a track")
            self.track_starts.append(self.size + pos + 8)
            self._scan_track(data, pos + 8, pos + 8 + length, track, source, warnings)
            track, pos = track + 1, pos + 8 + length
        else:
            if pos < size:
                warnings.append(f"{size - pos} bytes after the last chunk are ignored")
        return FileHeader(source, ticks_per_beat, smpte, track, warnings)

    def _scan_track(self, data: bytes, pos: int, end: int, track: int, source: str | None, warnings: list[str]) -> None:
        """Cut the chunk ``data[pos:end]`` into runs and single events.

        Two common single events, a text-like meta event and a program
        change with a one-byte delta, are recorded here directly; every other
        one goes through :func:`_read_event`, which gives the same record.
        """
        runs, singles = self.runs, self.singles
        marks = len(runs), len(singles)
        offset = self.size
        single_status, text_meta, match_continuing, match_fresh = _SINGLE_STATUS, _TEXT_META, RUN_CONTINUING.match, RUN_FRESH.match
        run_items, single_items, flush, max_run = runs.items, singles.items, Records.FLUSH, MAX_RUN_BYTES
        status_class = _NO_STATUS
        try_run = True
        try:
            while pos < end:
                delta = data[pos]
                if delta < 0x80 and pos + 3 < end:
                    status = data[pos + 1]
                    if text_meta[status == 0xFF and data[pos + 2]] and data[pos + 3] < 0x80 and pos + 4 + data[pos + 3] < end:
                        single_items += (offset + pos, delta, OTHER, 0, 0)
                        pos, try_run = pos + 4 + data[pos + 3], True
                        continue
                    if status & 0xF0 == 0xC0:
                        single_items += (offset + pos, delta, status, data[pos + 2], 0)
                        pos, status_class, try_run = pos + 3, _ONE_DATA_BYTE, True
                        continue
                # a one-byte delta followed by a meta, sysex or one-data-byte status cannot start a run
                if try_run and (delta >= 0x80 or pos + 1 >= end or not single_status[data[pos + 1]]):
                    limit = pos + max_run if pos + max_run < end else end
                    run = (match_continuing if status_class == _TWO_DATA_BYTES else match_fresh)(data, pos, limit)
                    if run is not None:
                        stop = run.end()
                        run_items += (offset + pos, offset + stop)
                        if len(run_items) >= flush:
                            runs.flush()
                            run_items = runs.items
                        # a run ends before a single event, unless the limit cut it
                        pos, status_class, try_run = stop, _TWO_DATA_BYTES, limit < end
                        continue
                next_pos, status_class, delta, code, a, b = _read_event(data, pos, end, status_class, track, source)
                single_items += (offset + pos, delta, code, a, b)
                if len(single_items) >= flush:
                    singles.flush()
                    single_items = singles.items
                if next_pos < 0:
                    if -next_pos < end:
                        warnings.append(f"track {track}: {end + next_pos} bytes after End-of-Track are ignored")
                    break
                pos, try_run = next_pos, True
        except _Abort:
            runs.truncate(marks[0])
            singles.truncate(marks[1])
            warnings.append(f"track {track} starts in running status without a status byte: the whole track is ignored")


def _division(word: bytes, source: str | None, warnings: list[str]) -> tuple[float, bool]:
    """Ticks per beat, and whether the file uses SMPTE timing.

    SMPTE timing counts ticks per video frame; the reference misreads it as a
    huge ticks-per-beat value. midilm converts it at :data:`SMPTE_BPM`
    (ticks per beat = frames per second * ticks per frame * 60 / bpm), so the
    tokens keep the file's real time.
    """
    if word[0] & 0x80:
        frames = 256 - word[0]
        frames_per_second = _SMPTE_FRAMES_PER_SECOND.get(frames, float(frames))
        ticks_per_frame = word[1]
        if ticks_per_frame == 0:
            raise MidiFileError(source, "SMPTE time division with 0 ticks per frame")
        ticks_per_beat = frames_per_second * ticks_per_frame * 60 / SMPTE_BPM
        warnings.append(
            f"SMPTE time division ({frames_per_second:g} frames per second, {ticks_per_frame} ticks per frame) "
            f"converted at {SMPTE_BPM} bpm: {ticks_per_beat:g} ticks per beat"
        )
        return ticks_per_beat, True
    ticks_per_beat = int.from_bytes(word, "big")
    if ticks_per_beat == 0:
        raise MidiFileError(source, "the header's time division is 0 ticks per beat")
    return ticks_per_beat, False


def read_vlq(data: bytes, pos: int, end: int, source: str | None, track: int) -> tuple[int, int, bool]:
    """Variable-length quantity at ``pos``: (value, next position, complete);
    incomplete when the chunk ends inside it. Refuses a quantity longer than
    the standard's 4 bytes at once, so that no input makes reading it slow."""
    value = 0
    for at in range(pos, min(end, pos + MAX_VLQ_BYTES)):
        byte = data[at]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + 1, True
    if end - pos > MAX_VLQ_BYTES:
        raise MidiFileError(
            source,
            f"track {track}: a variable-length quantity at byte {pos} is longer than {MAX_VLQ_BYTES} bytes (the MIDI standard's limit)",
        )
    return 0, end, False


def _cut_off(source: str | None, track: int, what: str, pos: int) -> MidiFileError:
    return MidiFileError(source, f"track {track}: {what} at byte {pos} is cut off by the end of its chunk")


def _read_event(data: bytes, pos: int, end: int, status_class: int, track: int, source: str | None) -> tuple[int, int, int, int, int, int]:
    """One event the runs do not cover, read by the reference's rules.

    Returns ``(next_pos, status_class, delta, code, a, b)``; ``next_pos`` is
    ``-stop`` when the track ends with this event (End-of-Track, or a meta or
    sysex event whose data runs past the chunk).
    """
    if data[pos] < 0x80:
        delta, at, complete = data[pos], pos + 1, True
    else:
        delta, at, complete = read_vlq(data, pos, end, source, track)
    if not complete or at >= end:
        raise _cut_off(source, track, "event", pos)
    first = data[at]
    if first < 0xF0:
        code = first if first & 0x80 else RUNNING
        if code:
            at += 1
            status_class = _ONE_DATA_BYTE if (first & 0xE0) == 0xC0 else _TWO_DATA_BYTES
        elif status_class == _NO_STATUS:
            raise _Abort
        if status_class == _ONE_DATA_BYTE:
            if at >= end:
                raise _cut_off(source, track, "channel message", pos)
            return at + 1, status_class, delta, code, data[at], 0
        if at + 2 > end:
            raise _cut_off(source, track, "channel message", pos)
        return at + 2, status_class, delta, code, data[at], data[at + 1]
    at += 1
    if first == 0xFF:
        if at >= end:
            raise _cut_off(source, track, "meta event", pos)
        meta_type = data[at]
        if at + 1 < end and data[at + 1] < 0x80:
            length, at = data[at + 1], at + 2
        else:
            length, at, _ = read_vlq(data, at + 1, end, source, track)
        needed = _META_FIXED_BYTES.get(meta_type, 0) if meta_type else (2 if length == 2 else 0)
        if at + needed > end:
            raise _cut_off(source, track, f"meta event {meta_type:#04x}", pos)
        stop = at + length
        next_pos = -stop if meta_type == 0x2F or stop >= end else stop
        if meta_type == 0x51:
            return next_pos, status_class, delta, META | 0x51, int.from_bytes(data[at : at + 3], "big"), 0
        if meta_type == 0x58:
            return next_pos, status_class, delta, META | 0x58, data[at], data[at + 1]
        if meta_type == 0x59:
            signed = data[at] - 256 if data[at] & 0x80 else data[at]
            return next_pos, status_class, delta, META | 0x59, signed, data[at + 1]
        return next_pos, status_class, delta, OTHER, 0, 0
    if first in (0xF0, 0xF7):
        length, at, _ = read_vlq(data, at, end, source, track)
        stop = at + length
        return (-stop if stop >= end else stop), status_class, delta, OTHER, 0, 0
    size = 2 if first == 0xF2 else 0 if first == 0xF6 else 1  # song position, tune request, other system bytes
    if at + size > end:
        raise _cut_off(source, track, f"system message {first:#04x}", pos)
    return at + size, status_class, delta, OTHER, 0, 0
