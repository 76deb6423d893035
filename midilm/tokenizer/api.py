"""Public entry points: MIDI file (path or bytes) or score -> tokens and report."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from midilm.errors import MidiFileError
from midilm.tokenizer.encoder import encode, encode_events
from midilm.tokenizer.encoder.table import Batch
from midilm.tokenizer.options import TokenizerOptions
from midilm.tokenizer.reader import read_batch, read_midi, read_midis
from midilm.tokenizer.report import TokenizeReport
from midilm.tokenizer.score import MidiScore, score_from_list

Source = str | os.PathLike | bytes

MAX_FILE_BYTES = 64 << 20
"""Default size limit of a MIDI file: 64 MiB (real pieces take a few MB at most). Tokenizing takes up
to about 8 times a file's size in memory (files of nothing but notes, the most events per byte;
``bench/tokenizer_memory.py``), so this bounds one file's tokenizing to about half a gigabyte; a
larger file is refused before it is read; ``max_bytes`` (``--max-mb`` on the command line) raises the limit."""

MAX_BATCH_FILES = 256
"""Files :func:`tokenize_many` reads and encodes together at most (per-file tables grow with it)."""
MAX_BATCH_BYTES = 96 << 10
"""A batch stops growing once it holds this many bytes of MIDI data (about
10,000 events): its working tables stay within a core's cache, and larger
batches, sorted as a whole, get slower per event."""


@dataclass
class Tokenized:
    """Token rows ``[n_events, 8]`` (``vocab.TOKEN_DTYPE``) and what tokenizing dropped."""

    tokens: np.ndarray
    report: TokenizeReport


def read_bytes(source: Source, max_bytes: int = MAX_FILE_BYTES) -> tuple[bytes, str | None]:
    """The bytes of a MIDI source and the name errors should give it. Only
    regular files are read (a FIFO would wait forever, a device never end),
    and only up to ``max_bytes``."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        check_size(len(source), max_bytes, None)
        return bytes(source), None
    path = Path(source)
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):
            raise MidiFileError(path, "not a regular file (a folder, FIFO or device): not read")
        check_size(status.st_size, max_bytes, path)
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise MidiFileError(path, f"cannot read: {exc.strerror or exc}") from exc


def check_size(size: int, max_bytes: int, source: Path | None) -> None:
    """Refuse a MIDI file over the size limit, before its bytes are read."""
    if size > max_bytes:
        raise MidiFileError(
            source,
            f"{size:,} bytes, over the size limit of {max_bytes:,} bytes ({max_bytes / 2**20:.3g} MiB; max_bytes, or --max-mb, raises it)",
        )


def read_score(source: Source, *, max_bytes: int = MAX_FILE_BYTES) -> MidiScore:
    """Parse a MIDI file into a :class:`MidiScore` (``.to_list()`` gives the reference's list form)."""
    data, name = read_bytes(source, max_bytes)
    return read_midi(data, name)


def read_scores(sources: Iterable[Source], *, max_bytes: int = MAX_FILE_BYTES) -> Iterator[MidiScore | MidiFileError]:
    """Parse many MIDI files, in batches like :func:`tokenize_many`: for each
    source, in order, its :class:`MidiScore` or the error :func:`read_score`
    would raise."""
    for batch in _batches(sources, max_bytes):
        yield from _read_batch(batch)


def tokenize(source: Source, options: TokenizerOptions | None = None, *, max_bytes: int = MAX_FILE_BYTES) -> Tokenized:
    """Tokenize a MIDI file, given as a path or as its bytes.

    Raises :class:`~midilm.errors.MidiFileError` (naming the file and the
    reason) for data that is not a readable MIDI file, a file over
    ``max_bytes``, or one there is not enough memory for.
    """
    (result,) = _tokenize_batch([read_bytes(source, max_bytes)], options or TokenizerOptions())
    if isinstance(result, MidiFileError):
        raise result
    return result


def tokenize_many(
    sources: Iterable[Source], options: TokenizerOptions | None = None, *, max_bytes: int = MAX_FILE_BYTES
) -> Iterator[Tokenized | MidiFileError]:
    """Tokenize many MIDI files (paths or bytes): for each source, in order,
    its :class:`Tokenized`, or the :class:`~midilm.errors.MidiFileError` that
    :func:`tokenize` would raise for it (returned, not raised, so that one bad
    file does not stop the others).

    The same tokens and reports as :func:`tokenize`, about two and a half
    times faster on small files: files are read and encoded in batches, which share
    numpy's fixed cost per call. A batch holds at most ``MAX_BATCH_FILES``
    files or about ``MAX_BATCH_BYTES`` bytes, and a larger file is a batch of
    its own, so memory stays a few times the largest file's size.
    """
    options = options or TokenizerOptions()
    for batch in _batches(sources, max_bytes):
        yield from _tokenize_batch(batch, options)


Item = tuple[bytes, str | None] | MidiFileError
"""A source's bytes and name, or why it could not be read."""


def _batches(sources: Iterable[Source], max_bytes: int) -> Iterator[list[Item]]:
    """The sources read, in batches of at most ``MAX_BATCH_FILES`` files or about
    ``MAX_BATCH_BYTES`` bytes; a larger file makes a batch of its own (the
    tokenizer's memory stays a few times a file's size only for files alone)."""
    batch: list[Item] = []
    size = 0
    for source in sources:
        try:
            item: Item = read_bytes(source, max_bytes)
        except MidiFileError as error:
            item = error
        item_size = len(item[0]) if isinstance(item, tuple) else 0
        if item_size > MAX_BATCH_BYTES and batch:
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item_size
        if len(batch) >= MAX_BATCH_FILES or size >= MAX_BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _read_batch(items: list[Item]) -> list[MidiScore | MidiFileError]:
    """Parse a batch; an item that is already an error (an unreadable path) stays one."""
    readable = [item for item in items if not isinstance(item, MidiFileError)]
    scores = iter(read_midis(readable))
    return [item if isinstance(item, MidiFileError) else next(scores) for item in items]


def _tokenize_batch(items: list[Item], options: TokenizerOptions) -> list[Tokenized | MidiFileError]:
    """Read and encode a batch; when memory runs out, each file alone, and a
    file that does not fit alone becomes an error, so that the others go on."""
    try:
        return _read_and_encode(items, options)
    except MemoryError:
        if len(items) > 1:
            return [result for item in items for result in _tokenize_batch([item], options)]
        if isinstance(items[0], MidiFileError):
            return [items[0]]
        data, name = items[0]
        return [MidiFileError(name, f"not enough memory to tokenize it ({len(data) / 2**20:.1f} MiB)")]


def _read_and_encode(items: list[Item], options: TokenizerOptions) -> list[Tokenized | MidiFileError]:
    """The reader's table goes to the encoder as it is (no score objects in between)."""
    read, events = read_batch([item for item in items if not isinstance(item, MidiFileError)])
    files = [file for file in read if not isinstance(file, MidiFileError)]
    reports = [TokenizeReport(source=file.source) for file in files]
    counts = [len(events)] if len(files) == 1 else np.bincount(events.file, minlength=len(files)).tolist()
    for report, file, count in zip(reports, files, counts, strict=True):
        report.record_read(file.ticks_per_beat, file.tracks, count, file.dropped, file.warnings)
    tokens = encode_events(events, Batch(reports, [file.ticks_per_beat for file in files]), options) if files else []
    encoded = iter(Tokenized(rows, report) for rows, report in zip(tokens, reports, strict=True))
    outcomes = iter(read)
    results: list[Tokenized | MidiFileError] = []
    for item in items:
        outcome = item if isinstance(item, MidiFileError) else next(outcomes)
        results.append(outcome if isinstance(outcome, MidiFileError) else next(encoded))
    return results


def tokenize_score(score: MidiScore | list, options: TokenizerOptions | None = None, source: str | None = None) -> Tokenized:
    """Tokenize a score: a :class:`MidiScore` or the reference's list form
    ``[ticks_per_beat, track, ...]`` (for example :func:`detokenize`'s output)."""
    if not isinstance(score, MidiScore):
        score = score_from_list(score, source)
    report = TokenizeReport(source=source)
    tokens = encode(score, options or TokenizerOptions(), report)
    return Tokenized(tokens, report)
