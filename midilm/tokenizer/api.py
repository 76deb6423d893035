"""Public entry points: MIDI file (path or bytes) or score -> tokens and report."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from midilm.errors import MidiFileError
from midilm.tokenizer.encode import encode
from midilm.tokenizer.options import TokenizerOptions
from midilm.tokenizer.reader import read_midi
from midilm.tokenizer.report import TokenizeReport
from midilm.tokenizer.score import MidiScore, score_from_list

Source = str | os.PathLike | bytes


@dataclass
class Tokenized:
    """Token rows ``[n_events, 8]`` (``vocab.TOKEN_DTYPE``) and what tokenizing dropped."""

    tokens: np.ndarray
    report: TokenizeReport


def read_bytes(source: Source) -> tuple[bytes, str | None]:
    """The bytes of a MIDI source and the name errors should give it."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), None
    path = Path(source)
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise MidiFileError(path, f"cannot read: {exc.strerror or exc}") from exc


def read_score(source: Source) -> MidiScore:
    """Parse a MIDI file into a :class:`MidiScore` (``.to_list()`` gives the reference's list form)."""
    data, name = read_bytes(source)
    return read_midi(data, name)


def tokenize(source: Source, options: TokenizerOptions | None = None) -> Tokenized:
    """Tokenize a MIDI file, given as a path or as its bytes.

    Raises :class:`~midilm.errors.MidiFileError` (naming the file and the
    reason) for data that is not a readable MIDI file.
    """
    data, name = read_bytes(source)
    report = TokenizeReport(source=name)
    tokens = encode(read_midi(data, name), options or TokenizerOptions(), report)
    return Tokenized(tokens, report)


def tokenize_score(score: MidiScore | list, options: TokenizerOptions | None = None, source: str | None = None) -> Tokenized:
    """Tokenize a score: a :class:`MidiScore` or the reference's list form
    ``[ticks_per_beat, track, ...]`` (for example :func:`detokenize`'s output)."""
    if not isinstance(score, MidiScore):
        score = score_from_list(score, source)
    report = TokenizeReport(source=source)
    tokens = encode(score, options or TokenizerOptions(), report)
    return Tokenized(tokens, report)
