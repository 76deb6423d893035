"""Standard MIDI File reader that gives exactly the score the reference's
``MIDI.midi2score`` gives, fast, and refuses what the reference cannot read.

How it is fast: a track is cut into *runs* of plain two-data-byte channel
messages (notes, control changes, pitch bends...), matched by a regular
expression at C speed and decoded all at once with numpy. Everything else
(meta events, sysex, program changes, corrupt data bytes, the end of a chunk)
goes through :func:`_read_event`, a per-event reader that states the
reference's rules one by one. Note pairing is also done with numpy.
:func:`read_midis` does the numpy work for a batch of files at once, so that
small files share numpy's fixed cost per call.

The reference's rules this reproduces (``docs/tokenizer.md`` has the full list):
chunks of any type are read as tracks; data bytes are not masked (corrupt
values >= 128 are kept and dropped later by the tokenizer's range check);
running status survives meta and sysex events; a data byte before any status
empties the whole track; a track stops at its first End-of-Track, whose delta
still counts; note-offs (or note-ons of velocity 0) close the oldest open note
of the same ``channel * 128 + pitch``; a note is listed where its note-off
is; notes never closed end at the track's last tick and are listed at the end
of the track, grouped by that key in the order each key was first opened.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from midilm.errors import MidiFileError
from midilm.tokenizer.score import (
    CONTROL,
    DEFAULT_32NDS_PER_BEAT,
    DEFAULT_CLOCKS_PER_CLICK,
    KEY_SIG,
    KIND,
    N_COLUMNS,
    NOTE,
    PARAM0,
    PARAM1,
    PARAM2,
    PARAM3,
    PATCH,
    TEMPO,
    TICK,
    TIME_SIG,
    TRACK,
    MidiScore,
)

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


_RUN_CONTINUING, _RUN_FRESH = _compile_runs()
"""A run of two-data-byte channel messages that may start in running status;
the same starting with an explicit status (when running status is unset or
belongs to a one-data-byte message)."""

RUNNING = 0
"""Record code of a channel message in running status (its status is filled in later)."""
META = 0x100
"""Record code base of meta events: ``META | type`` for tempo, time and key signatures."""
OTHER = 0x200
"""Record code of every event the tokenizer ignores (text, sysex, End-of-Track...)."""

_NO_STATUS, _ONE_DATA_BYTE, _TWO_DATA_BYTES = 0, 1, 2
"""Running-status classes: what a data byte in running status means."""

MAX_TRACK_TICKS = 1 << 40
"""A track this long is refused (it takes 4,096 delta times of the largest
4-byte quantity), which keeps every tick exact in int64 and float64 arithmetic."""

_SMPTE_FRAMES_PER_SECOND = {29: 29.97}
"""SMPTE frame rates whose header byte is not the rate itself (-29 means 29.97 drop-frame)."""
SMPTE_BPM = 120
"""Tempo at which SMPTE (seconds-based) timing is converted to beats."""


class _Abort(Exception):
    """A data byte before any status byte: the reference discards the track."""


_SINGLE_STATUS = tuple(byte >= 0xF0 or 0xC0 <= byte < 0xE0 for byte in range(256))
"""Status bytes that cannot start a run (meta, sysex, system, one data byte)."""

_META_FIXED_BYTES = {0x51: 3, 0x58: 2, 0x59: 2, 0x54: 5}
"""Bytes the reference reads from these meta events whatever their length field says."""


def read_midi(data: bytes, source: str | None = None) -> MidiScore:
    """Parse a Standard MIDI File into a :class:`MidiScore`.

    Raises :class:`~midilm.errors.MidiFileError` for data that is not a MIDI
    file, a malformed header, a division of 0 ticks and events cut off by the
    end of their chunk (the reference returns an empty score for the first
    two and crashes on the last two).
    """
    (result,) = read_midis([(data, source)])
    if isinstance(result, MidiFileError):
        raise result
    return result


def read_midis(items: Sequence[tuple[bytes, str | None]]) -> list[MidiScore | MidiFileError]:
    """Parse several files (``(data, source name)`` pairs) at once: each one
    becomes a :class:`MidiScore`, or the :class:`~midilm.errors.MidiFileError`
    that :func:`read_midi` would raise for it.

    Each file's bytes are cut into runs and single events one by one; the
    numpy work (decoding runs, pairing notes) then runs once for all of them,
    so that a small file does not pay numpy's fixed cost per call alone.
    """
    results: list[MidiScore | MidiFileError | None] = [None] * len(items)
    scan = _Scan()
    files: list[tuple[int, _FileHeader]] = []
    for index, (data, source) in enumerate(items):
        try:
            files.append((index, scan.file(data, source)))
        except MidiFileError as error:
            results[index] = error
    if not files:
        return results  # type: ignore[return-value]

    track_file = np.repeat(np.arange(len(files)), [header.tracks for _, header in files])
    smpte = np.array([header.smpte for _, header in files], bool)
    runs = np.array(scan.runs, np.int64).reshape(-1, 3).T
    singles = np.array(scan.records, np.int64).reshape(-1, 6).T
    messages = _merge(_decode_runs(scan.run_bytes, runs), runs, singles)
    columns, end_ticks, smpte_tempos = _score_events(messages, smpte[track_file] if smpte.any() else None)

    first_track = np.cumsum([0] + [header.tracks for _, header in files])
    bounds = np.searchsorted(columns[TRACK], first_track).tolist()
    columns[TRACK] -= first_track[track_file[columns[TRACK]]]
    events = columns.T  # rows of the score table; column operations stay contiguous
    last_ticks = np.zeros(len(files), np.int64)
    np.maximum.at(last_ticks, track_file[end_ticks[0]], end_ticks[1])
    dropped = np.bincount(track_file[smpte_tempos], minlength=len(files)).tolist()
    for file, (index, header) in enumerate(files):
        if last_ticks[file] >= MAX_TRACK_TICKS:
            results[index] = MidiFileError(header.source, f"a track lasts {int(last_ticks[file])} ticks: not a plausible MIDI time")
            continue
        if dropped[file]:
            header.warnings.append(f"{dropped[file]} tempo changes are ignored: SMPTE timing does not depend on tempo")
        results[index] = MidiScore(
            ticks_per_beat=header.ticks_per_beat,
            tracks=header.tracks,
            events=events[bounds[file] : bounds[file + 1]],
            warnings=tuple(header.warnings),
            dropped={"smpte_tempo": dropped[file]} if dropped[file] else {},
        )
    return results  # type: ignore[return-value]


@dataclass
class _FileHeader:
    """What the header and chunk layout of one file say."""

    source: str | None
    ticks_per_beat: float
    smpte: bool
    tracks: int
    warnings: list[str]


class _Scan:
    """Runs and single events of the files read so far, tracks numbered
    across files, in flat lists of numbers. A run is ``key, length, track``,
    its bytes kept in :attr:`run_bytes`; a single event is ``key, track,
    delta, code, a, b``; the key (offset of the file's bytes in the batch
    plus the event's position) orders them as they lie in the files."""

    def __init__(self) -> None:
        self.run_bytes: list[bytes] = []
        self.runs: list[int] = []
        self.records: list[int] = []
        self.tracks = 0
        self.offset = 0

    def file(self, data: bytes, source: str | None) -> _FileHeader:
        """Scan one file; on an error nothing of it is kept."""
        marks = len(self.run_bytes), len(self.runs), len(self.records)
        try:
            return self._scan_file(data, source)
        except MidiFileError:
            del self.run_bytes[marks[0] :], self.runs[marks[1] :], self.records[marks[2] :]
            raise

    def _scan_file(self, data: bytes, source: str | None) -> _FileHeader:
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
            self._scan_track(data, pos + 8, pos + 8 + length, track, source, warnings)
            track, pos = track + 1, pos + 8 + length
        else:
            if pos < size:
                warnings.append(f"{size - pos} bytes after the last chunk are ignored")
        self.tracks += track
        self.offset += size
        return _FileHeader(source, ticks_per_beat, smpte, track, warnings)

    def _scan_track(self, data: bytes, pos: int, end: int, track: int, source: str | None, warnings: list[str]) -> None:
        """Cut the chunk ``data[pos:end]`` into runs and single events."""
        run_bytes, runs, records = self.run_bytes, self.runs, self.records
        marks = len(run_bytes), len(runs), len(records)
        offset, batch_track = self.offset, self.tracks + track
        single_status, match_continuing, match_fresh = _SINGLE_STATUS, _RUN_CONTINUING.match, _RUN_FRESH.match
        status_class = _NO_STATUS
        try_run = True
        try:
            while pos < end:
                # a one-byte delta followed by a meta, sysex or one-data-byte status cannot start a run
                if try_run and (data[pos] >= 0x80 or pos + 1 >= end or not single_status[data[pos + 1]]):
                    run = (match_continuing if status_class == _TWO_DATA_BYTES else match_fresh)(data, pos, end)
                    if run is not None:
                        stop = run.end()
                        run_bytes.append(data[pos:stop])
                        runs += (offset + pos, stop - pos, batch_track)
                        pos, status_class, try_run = stop, _TWO_DATA_BYTES, False  # a run ends before a single event
                        continue
                next_pos, status_class, delta, code, a, b = _read_event(data, pos, end, status_class, track, source)
                records += (offset + pos, batch_track, delta, code, a, b)
                if next_pos < 0:
                    if -next_pos < end:
                        warnings.append(f"track {track}: {end + next_pos} bytes after End-of-Track are ignored")
                    break
                pos, try_run = next_pos, True
        except _Abort:
            del run_bytes[marks[0] :], runs[marks[1] :], records[marks[2] :]
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


MAX_VLQ_BYTES = 4
"""The MIDI standard's longest variable-length quantity (values below 2**28)."""


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


def _decode_runs(run_bytes: list[bytes], runs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Messages of the runs (columns ``key, length, track``) as columns
    ``track, delta, code, a, b``, and the number of messages in each run.

    In a run every message has exactly three bytes below 0x80: the last byte
    of its delta time and its two data bytes, with an explicit status byte (if
    any) between the first two. So the low bytes, taken three at a time,
    locate every message at once.
    """
    if not runs.shape[1]:
        return np.zeros((5, 0), np.int64), np.zeros(0, np.int64)
    buf = np.frombuffer(b"".join(run_bytes), np.uint8)
    low = (buf < 0x80).nonzero()[0]
    delta_end, data1, data2 = low[0::3], low[1::3], low[2::3]
    count = len(delta_end)
    lengths = runs[1]
    per_run = np.diff(np.append(np.searchsorted(low, lengths.cumsum() - lengths), len(low))) // 3
    rows = np.empty((5, count), np.int64)
    rows[0] = np.repeat(runs[2], per_run)
    delta = buf[delta_end].astype(np.int64)
    event_start = np.empty(count, np.int64)
    event_start[0] = 0
    event_start[1:] = data2[:-1] + 1
    continuation = delta_end - event_start
    longer = continuation.nonzero()[0]
    for back in (1, 2, 3):
        if not len(longer):
            break
        delta[longer] |= (buf[delta_end[longer] - back].astype(np.int64) & 0x7F) << (7 * back)
        longer = longer[continuation[longer] > back]
    rows[1] = delta
    rows[2] = np.where(data1 - delta_end == 2, buf[delta_end + 1], RUNNING)
    rows[3] = buf[data1]
    rows[4] = buf[data2]
    return rows, per_run


def _merge(decoded: tuple[np.ndarray, np.ndarray], runs: np.ndarray, singles: np.ndarray) -> np.ndarray:
    """All messages in file order, as columns ``track, delta, code, a, b``: a
    single event (columns ``key, track, delta, code, a, b``) goes after the
    messages of every run whose key is smaller."""
    run_rows, per_run = decoded
    if not singles.shape[1]:
        return run_rows
    if not run_rows.shape[1]:
        return singles[1:]
    messages_before = np.append(0, per_run.cumsum())[np.searchsorted(runs[0], singles[0])]
    single_at = messages_before + np.arange(singles.shape[1])
    count = run_rows.shape[1] + singles.shape[1]
    is_single = np.zeros(count, bool)
    is_single[single_at] = True
    joined_at = np.empty(count, np.int64)
    joined_at[~is_single] = np.arange(run_rows.shape[1])
    joined_at[single_at] = np.arange(run_rows.shape[1], count)
    return np.concatenate([run_rows, singles[1:]], axis=1).take(joined_at, axis=1)


_ON, _OFF = 6, 7
_MESSAGE_KIND = np.full(OTHER + 1, -1, np.int64)
"""Status byte (or record code) -> score kind, or _ON / _OFF for note messages."""
_MESSAGE_KIND[0x80:0x90] = _OFF
_MESSAGE_KIND[0x90:0xA0] = _ON
_MESSAGE_KIND[0xB0:0xC0] = CONTROL
_MESSAGE_KIND[0xC0:0xD0] = PATCH
_MESSAGE_KIND[META | 0x51] = TEMPO
_MESSAGE_KIND[META | 0x58] = TIME_SIG
_MESSAGE_KIND[META | 0x59] = KEY_SIG


def _score_events(messages: np.ndarray, smpte_track: np.ndarray | None) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray]:
    """The columns of the score table from the messages (columns ``track,
    delta, code, a, b`` in file order, tracks numbered across the batch),
    events ordered by track. Also each track's last tick, as (tracks,
    ticks), and the tracks of the tempo events lost by files with SMPTE
    timing (``smpte_track``: whether each track has it; None: none has)."""
    count = messages.shape[1]
    if not count:
        empty = np.zeros(0, np.int64)
        return np.zeros((N_COLUMNS, 0), np.int64), (empty, empty), empty
    track, delta, code, a, b = messages
    tick = delta.cumsum()
    track_start = np.diff(track).nonzero()[0] + 1
    if len(track_start):
        first = np.append(0, track_start)
        tick -= np.repeat(tick[first] - delta[first], np.diff(np.append(first, count)))
    last = np.append(track_start - 1, count - 1)
    end_tick = np.zeros(int(track[-1]) + 1, np.int64)
    end_tick[track[last]] = tick[last]

    running = code == RUNNING
    if running.any():
        explicit = ~running & (code < META)
        status = np.where(running, code[np.maximum.accumulate(np.where(explicit, np.arange(count), 0))], code)
    else:
        status = code
    kind = _MESSAGE_KIND[status]
    channel = status & 0x0F
    smpte_tempo = np.zeros(0, np.int64)
    if smpte_track is not None:
        tempo = (kind == TEMPO) & smpte_track[track]
        smpte_tempo = track[tempo]
        kind[tempo] = -1

    settings = ((kind >= PATCH) & (kind <= KEY_SIG)).nonzero()[0]
    closed_on, closed_off, open_on, open_first = pair_notes(
        track, channel, a, (kind == _ON) & (b > 0), (kind == _OFF) | ((kind == _ON) & (b == 0))
    )
    columns = np.zeros((N_COLUMNS, len(settings) + len(closed_on) + len(open_on)), np.int64)
    setting_kind = kind[settings]
    meta = setting_kind >= TEMPO
    part = columns[:, : len(settings)]
    part[KIND] = setting_kind
    part[TICK] = tick[settings]
    part[TRACK] = track[settings]
    part[PARAM0] = np.where(meta, a[settings], channel[settings])
    part[PARAM1] = np.where(meta, b[settings], a[settings])
    part[PARAM2] = np.where(setting_kind == CONTROL, b[settings], 0)
    time_sig = (setting_kind == TIME_SIG).nonzero()[0]
    part[PARAM2, time_sig] = DEFAULT_CLOCKS_PER_CLICK
    part[PARAM3, time_sig] = DEFAULT_32NDS_PER_BEAT
    note_on = np.concatenate([closed_on, open_on])
    part = columns[:, len(settings) :]
    part[KIND] = NOTE
    part[TICK] = tick[note_on]
    part[TRACK] = track[note_on]
    part[PARAM0] = channel[note_on]
    part[PARAM1] = a[note_on]
    part[PARAM2] = b[note_on]
    part[PARAM3, : len(closed_on)] = tick[closed_off] - tick[closed_on]
    part[PARAM3, len(closed_on) :] = end_tick[track[open_on]] - tick[open_on]

    # score order: a setting where it is, a closed note where its note-off is
    row_at = np.full(count, -1, np.int64)
    row_at[settings] = np.arange(len(settings))
    row_at[closed_off] = np.arange(len(settings), len(settings) + len(closed_on))
    order = row_at[row_at >= 0]
    ends = (track[last], tick[last])
    if len(open_on):
        # notes never closed: after their track's events, by key first opened, then oldest first
        open_rows = len(settings) + len(closed_on) + np.lexsort((open_on, open_first, track[open_on]))
        order = np.insert(order, np.searchsorted(columns[TRACK, order], columns[TRACK, open_rows], side="right"), open_rows)
    return columns.take(order, axis=1), ends, smpte_tempo


def pair_notes(
    track: np.ndarray, channel: np.ndarray, pitch: np.ndarray, is_on: np.ndarray, is_off: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pair note-ons with note-offs first-in first-out per track and
    ``channel * 128 + pitch`` (the reference's key, so a corrupt pitch of 128
    on channel 0 pairs with pitch 0 on channel 1).

    Returns message indices: (on, off) of the closed notes, the ons never
    closed, and for each of those the first note-on of its key.

    A key whose messages alternate on, off, on, off (most keys) pairs each
    on with the message after it; the other keys go through
    :func:`_pair_queues`.
    """
    index = (is_on | is_off).nonzero()[0]
    count = len(index)
    if not count:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, empty
    track_of, pitch_key = track[index], channel[index] * 128 + pitch[index]  # pitch_key < 2**12: data bytes
    if track_of[-1] < 1 << 16:  # tracks come in order: two stable radix sorts of 16-bit keys
        by_pitch = np.argsort(pitch_key.astype(np.uint16), kind="stable")
        order = by_pitch[np.argsort(track_of[by_pitch].astype(np.uint16), kind="stable")]
    else:
        order = np.argsort((track_of * 4096 + pitch_key) * count + np.arange(count))  # unique keys: as stable as a stable sort
    index, key = index[order], track_of[order] * 4096 + pitch_key[order]
    on = is_on[index]
    new_key = np.empty(count, bool)
    new_key[0] = True
    np.not_equal(key[1:], key[:-1], out=new_key[1:])
    last_of_key = np.empty(count, bool)
    last_of_key[-1] = True
    last_of_key[:-1] = new_key[1:]
    irregular = (new_key & ~on) | (last_of_key & on)
    irregular[1:] |= ~new_key[1:] & (on[1:] == on[:-1])
    if not irregular.any():
        closed_on = on.nonzero()[0]
        return index[closed_on], index[closed_on + 1], index[:0], index[:0]
    group = new_key.cumsum() - 1
    irregular_group = np.zeros(int(group[-1]) + 1, bool)
    irregular_group[group[irregular]] = True
    queued = irregular_group[group]
    regular_on = (on & ~queued).nonzero()[0]
    queued_at = queued.nonzero()[0]
    queued_on, queued_off, open_on, open_first = (queued_at[at] for at in _pair_queues(key[queued_at], on[queued_at]))
    return (
        index[np.concatenate([regular_on, queued_on])],
        index[np.concatenate([regular_on + 1, queued_off])],
        index[open_on],
        index[open_first],
    )


def _pair_queues(key: np.ndarray, on: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First-in first-out pairing of note messages sorted by key (then in
    file order), ``on`` telling note-ons from note-offs. Returns positions:
    (on, off) of the closed notes, the ons never closed, and for each of
    those the first note-on of its key.

    One queue per key, vectorised: along a key's messages the queue length
    is the running sum of +1 (on) / -1 (off) clamped at 0, which equals
    ``sum - min(0, running minimum of sum)``. An off that finds the queue
    empty is ignored; the k-th accepted off closes the k-th on.
    """
    count = len(key)
    step = on.astype(np.int64) * 2 - 1
    new_key = np.empty(count, bool)
    new_key[0] = True
    np.not_equal(key[1:], key[:-1], out=new_key[1:])
    group = new_key.cumsum() - 1
    running = step.cumsum()
    local = running - (running - step)[new_key][group]
    spacing = 2 * count + 2  # every earlier group's values lie above this group's
    running_min = np.minimum.accumulate(local - group * spacing) + group * spacing
    queue = local - np.minimum(running_min, 0)
    queue_before = np.empty(count, np.int64)
    queue_before[0] = 0
    queue_before[1:] = queue[:-1]
    accepted = ~on & ~new_key & (queue_before > 0)

    on_at = on.nonzero()[0]
    ons_before_key = (on.cumsum() - on)[new_key]
    accepted_count = accepted.cumsum()
    off_at = accepted.nonzero()[0]
    rank = accepted_count[off_at] - (accepted_count - accepted)[new_key][group[off_at]] - 1
    matched = ons_before_key[group[off_at]] + rank
    still_open = np.ones(len(on_at), bool)
    still_open[matched] = False
    open_at = on_at[still_open]
    first_of_key = on_at[ons_before_key[group[open_at]]]
    return on_at[matched], off_at, open_at, first_of_key
