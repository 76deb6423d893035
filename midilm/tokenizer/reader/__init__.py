"""Standard MIDI File reader that gives exactly the score the reference's
``MIDI.midi2score`` gives, fast and in bounded memory, and refuses what the
reference cannot read.

How it works: :mod:`.scan` cuts each file into runs of plain two-data-byte
channel messages (matched by a regular expression at C speed) and single
events (read one by one by the reference's rules); :mod:`.messages` decodes
the runs of a piece of the batch with numpy; :mod:`.builder` turns a piece's
messages into score events (ticks, running status, note pairing with
:mod:`.notes`). The numpy work runs on pieces of :data:`PIECE_BYTES`: a
batch of small files is one piece, so that they share numpy's fixed cost per
call, and a large file is many, so that memory holds its score table and one
piece's working arrays, a few times the file's size.

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

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from midilm.errors import MidiFileError
from midilm.tokenizer.columns import Columns, index_dtype
from midilm.tokenizer.reader.builder import MAX_TRACK_TICKS, ScoreBuilder
from midilm.tokenizer.reader.messages import piece_messages
from midilm.tokenizer.reader.scan import MAX_VLQ_BYTES, SMPTE_BPM, FileHeader, Scan, read_vlq
from midilm.tokenizer.score import MidiScore

__all__ = ["MAX_TRACK_TICKS", "MAX_VLQ_BYTES", "PIECE_BYTES", "SMPTE_BPM", "ReadFile", "read_batch", "read_midi", "read_midis", "read_vlq"]

PIECE_BYTES = 1 << 14
"""Bytes of MIDI whose numpy work is done at once (more when many notes are
open across the cut: a piece takes at least :data:`BYTES_PER_OPEN_NOTE` per
open note, so that carrying them stays a fraction of the work)."""
ONE_PIECE_BYTES = 1 << 18
"""A batch up to this size is one piece: the fixed cost of numpy's calls is
paid once, and its working arrays take a few megabytes at most."""
BYTES_PER_OPEN_NOTE = 8


@dataclass
class ReadFile:
    """A file read: its header's facts, what the reader left out, its warnings."""

    source: str | None
    ticks_per_beat: float
    tracks: int
    warnings: list[str]
    dropped: dict[str, int]


def read_batch(items: Sequence[tuple[bytes, str | None]]) -> tuple[list[ReadFile | MidiFileError], Columns]:
    """Parse several files (``(data, source name)`` pairs) at once: each one's
    :class:`ReadFile` or the :class:`~midilm.errors.MidiFileError` that
    refuses it, and the events of the files read as one table, file after
    file, each in score order; its ``file`` field counts the files read."""
    results: list[ReadFile | MidiFileError] = []
    scan = Scan()
    headers: list[FileHeader] = []
    for data, source in items:
        try:
            headers.append(scan.file(data, source))
            results.append(headers[-1])  # type: ignore[arg-type]
        except MidiFileError as error:
            results.append(error)
    if not headers:
        return results, Columns.empty()
    file_first_track = np.array([header.first_track for header in headers], np.int64)
    smpte = np.array([header.smpte for header in headers], bool)
    builder = ScoreBuilder(np.array(scan.track_starts, np.int64), np.array(scan.track_files, np.int64), file_first_track, smpte)
    runs, singles = scan.runs.array(), scan.singles.array()
    for start, stop, run_range, single_range, last in _pieces(scan, runs, singles, builder):
        buffer = _piece_bytes(scan, start, stop) if run_range.start < run_range.stop else np.zeros(0, np.uint8)
        builder.add(piece_messages(buffer, start, runs[:, run_range], singles[:, single_range]), last)
    events = builder.finish()

    files: list[ReadFile | MidiFileError] = []
    for file, header in enumerate(headers):
        dropped = int(builder.smpte_tempos[file])
        if dropped:
            header.warnings.append(f"{dropped} tempo changes are ignored: SMPTE timing does not depend on tempo")
        if file in builder.overlong:
            files.append(MidiFileError(header.source, f"a track lasts {builder.overlong[file]} ticks: not a plausible MIDI time"))
        else:
            files.append(
                ReadFile(header.source, header.ticks_per_beat, header.tracks, header.warnings, {"smpte_tempo": dropped} if dropped else {})
            )
    if builder.overlong:
        events = _without_files(events, [isinstance(f, MidiFileError) for f in files])
    read = iter(files)
    return [result if isinstance(result, MidiFileError) else next(read) for result in results], events


def _pieces(scan: Scan, runs: np.ndarray, singles: np.ndarray, builder: ScoreBuilder) -> Iterator[tuple[int, int, range, range, bool]]:
    """The pieces of the batch, in order: (start, stop) positions, the runs
    and single events in it, and whether it is the last. A piece never cuts
    a run; it grows with the notes the builder carries into it."""
    if scan.size <= max(ONE_PIECE_BYTES, PIECE_BYTES):
        yield 0, scan.size, range(runs.shape[1]), range(singles.shape[1]), True
        return
    run_starts, run_stops, positions = runs[0], runs[1], singles[0]
    start = run_at = single_at = 0
    while start < scan.size:
        stop = start + max(PIECE_BYTES, BYTES_PER_OPEN_NOTE * builder.open_notes)
        if stop >= scan.size:
            stop = scan.size
        else:
            inside = int(np.searchsorted(run_starts, stop, side="right")) - 1
            if inside >= 0 and run_stops[inside] > stop:
                stop = int(run_stops[inside])
        run_end = int(np.searchsorted(run_starts, stop))
        single_end = int(np.searchsorted(positions, stop))
        yield start, stop, range(run_at, run_end), range(single_at, single_end), stop >= scan.size
        start, run_at, single_at = stop, run_end, single_end


def _piece_bytes(scan: Scan, start: int, stop: int) -> np.ndarray:
    """The batch's bytes from ``start`` to ``stop``: a view of one file's, or the files' joined."""
    first = bisect.bisect_right(scan.file_starts, start) - 1
    last = bisect.bisect_left(scan.file_starts, stop) - 1
    if first == last:
        offset = start - scan.file_starts[first]
        return np.frombuffer(scan.files[first], np.uint8, stop - start, offset)
    parts = []
    for file in range(first, last + 1):
        begin = scan.file_starts[file]
        parts.append(memoryview(scan.files[file])[max(start - begin, 0) : stop - begin])
    return np.frombuffer(b"".join(parts), np.uint8)


def _without_files(events: Columns, refused: list[bool]) -> Columns:
    """The events of the files not refused, files renumbered from 0."""
    refused_file = np.array(refused, bool)
    events.keep(~refused_file[events.file])
    events.file = (np.cumsum(~refused_file) - 1)[events.file].astype(index_dtype(len(refused)))
    return events


def read_midis(items: Sequence[tuple[bytes, str | None]]) -> list[MidiScore | MidiFileError]:
    """Parse several files (``(data, source name)`` pairs) at once: each one
    becomes a :class:`MidiScore`, or the :class:`~midilm.errors.MidiFileError`
    that :func:`read_midi` would raise for it."""
    results, events = read_batch(items)
    bounds = np.searchsorted(events.file, np.arange(sum(not isinstance(r, MidiFileError) for r in results) + 1)).tolist()
    scores: list[MidiScore | MidiFileError] = []
    file = 0
    for result in results:
        if isinstance(result, MidiFileError):
            scores.append(result)
            continue
        table = events.rows(bounds[file], bounds[file + 1]).to_score_table()
        scores.append(MidiScore(result.ticks_per_beat, result.tracks, table, tuple(result.warnings), result.dropped))
        file += 1
    return scores


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
