"""Convert one corpus unit to MIDI files with music21, working around its quirks.

Runs inside a pool worker. Each piece is parsed and written under a time
limit; a failure is recorded for that piece and the next one goes on. The
workarounds (measured on music21 10.5, see ``docs/corpus.md``):

- ABC import can put one TimeSignature/KeySignature object into two
  measures, and MIDI export then stops with "already found in this
  Stream"; each repeated object is replaced by a copy (the music is unchanged).
- Some ABC tunes declare a voice that never plays; its part has no
  measures, and MIDI export stops with "cannot process repeats on Stream
  that does not contain measures". Such a score is written again without
  its empty parts.
- Badly formed repeat marks make repeat expansion fail (a Beethoven
  quartet); such a score is written again without its repeat marks
  (played through once).
- In the ABC folk books ``-`` often joins two different pitches, which
  music21 turns into one long tied note; ties between different pitches
  are removed, so both notes sound as written.

Two shortcuts save a third of the conversion's time and change no byte of
its output: beaming is skipped while parsing (see :func:`_without_beaming`),
and a score without repeat marks is exported without the deep copy that
music21's repeat expansion makes (see :func:`_export_in_place`).
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from midilm.data.corpus.catalog import CorpusUnit
from midilm.data.workers import TimeLimitExceeded, time_limit

GAVE_UP = "gave up after"


@dataclass(frozen=True)
class ConversionJob:
    unit: CorpusUnit
    corpus_root: str
    output_dir: str
    cpu_limit_seconds: float | None


@dataclass(frozen=True)
class PieceResult:
    midi: str
    """MIDI path relative to the output folder."""
    origin: str
    licence: str
    ok: bool
    reason: str
    cpu_seconds: float
    """CPU time of the conversion (comparable across busy and idle machines)."""

    @property
    def gave_up(self) -> bool:
        """Whether the piece failed for lack of time (a larger limit may convert it)."""
        return self.reason.startswith(GAVE_UP)


@dataclass(frozen=True)
class UnitResult:
    unit: CorpusUnit
    pieces: tuple[PieceResult, ...]
    cpu_limit_seconds: float | None


def quiet_worker() -> None:
    """Pool initializer: music21 warns about many harmless encoding details;
    they would bury the progress bar."""
    warnings.simplefilter("ignore")


def convert_unit(job: ConversionJob) -> UnitResult:
    """Write the unit's pieces under ``job.output_dir``; never raises for a bad piece."""
    unit = job.unit
    source = Path(job.corpus_root) / unit.source
    outputs = unit.outputs()
    numbers: list[int | None] = list(unit.tunes) or [None]
    pieces = []
    for (midi, origin), number in zip(outputs, numbers, strict=True):
        started = time.process_time()
        try:
            with time_limit(job.cpu_limit_seconds):
                data = _piece_midi(source, number, merge_tunes=unit.merge_tunes)
            _write_atomically(Path(job.output_dir) / midi, data)
            ok, reason = True, ""
        except TimeLimitExceeded:
            ok, reason = False, f"{GAVE_UP} {job.cpu_limit_seconds:g} CPU-seconds"
        except Exception as exc:  # music21 raises many unrelated types; record, go on
            ok, reason = False, f"{type(exc).__name__}: {exc}"[:300]
        pieces.append(PieceResult(midi, origin, unit.licence, ok, reason, time.process_time() - started))
    return UnitResult(unit, tuple(pieces), job.cpu_limit_seconds)


def _piece_midi(source: Path, number: int | None, *, merge_tunes: bool) -> bytes:
    score = _parsed(source, number, merge_tunes=merge_tunes)
    if _expands_to_itself(score):
        try:
            return _export_in_place(score)
        except Exception:  # the failed export changed the score: start again from the file, the repairs need the original
            score = _parsed(source, number, merge_tunes=merge_tunes)
    return _midi_bytes(score)


def _parsed(source: Path, number: int | None, *, merge_tunes: bool):
    """The piece as a music21 score, with the quirks that would stop its export undone."""
    from music21 import converter, stream

    with _without_beaming():
        if number is None:
            parsed = converter.parse(source, forceSource=True, storePickle=False)
        else:
            parsed = converter.parse(source, number=number, forceSource=True, storePickle=False)
    if isinstance(parsed, stream.Opus):
        if merge_tunes:
            parsed = parsed.mergeScores()
        elif len(parsed.scores) == 1:
            parsed = parsed.scores[0]
        else:
            raise ValueError(f"expected one piece, found an opus of {len(parsed.scores)}")
    _unshare_signatures(parsed)
    if source.suffix.lower() == ".abc":
        _untie_different_pitches(parsed)
    return parsed


def _skip_beams(self, *, inPlace: bool = False, **ignored):
    return None if inPlace else self


@contextmanager
def _without_beaming() -> Iterator[None]:
    """Parse without beaming. music21's ABC import beams every measure, a
    quarter of the conversion's time; beams are notation and never reach the
    MIDI file (the bytes are identical), so the conversion skips them."""
    from music21 import stream

    original = stream.Stream.makeBeams
    stream.Stream.makeBeams = _skip_beams
    try:
        yield
    finally:
        stream.Stream.makeBeams = original


def _midi_bytes(score) -> bytes:
    """The reference export: music21's own, then again after each repair that applies."""
    from music21.midi import translate

    try:
        return translate.music21ObjectToMidiFile(score).writestr()
    except Exception as first_failure:
        for repair in (_drop_empty_parts, _strip_repeats):
            if repair(score):
                try:
                    return translate.music21ObjectToMidiFile(score).writestr()
                except Exception:
                    continue
        raise first_failure


def _expands_to_itself(score) -> bool:
    """Whether music21's repeat expansion would return a plain copy of ``score``:
    it has no repeat barline, bracket or expression (segno, da capo...), and
    every part has measures (without them the expansion fails, and the
    reference export repairs the score)."""
    from music21 import bar, repeat, spanner, stream

    if any(True for _ in score.recurse().getElementsByClass((bar.Repeat, spanner.RepeatBracket, repeat.RepeatExpression))):
        return False
    parts = list(score.getElementsByClass(stream.Part)) or [score]
    return all(part.hasMeasures() for part in parts)


def _export_in_place(score) -> bytes:
    """The MIDI file of a score that :func:`_expands_to_itself`, without copying it.

    music21's export starts by expanding repeats into a deep copy of the
    score (a quarter of the conversion's time), so that the caller's score
    is left unchanged. This score was parsed for this export alone, so the
    export may use (and change) it as it is: the expansion is replaced by
    the score itself, which is what it returns (copied) without repeat marks.
    A test checks that both exports give the same bytes.
    """
    from music21.midi import translate

    score.expandRepeats = lambda *args, **kwargs: score  # this object only; it is discarded after the export
    return translate.music21ObjectToMidiFile(score).writestr()


def _unshare_signatures(score) -> None:
    from music21 import key, meter

    seen: set[int] = set()
    for container in list(score.recurse(streamsOnly=True, includeSelf=True)):
        for element in list(container.getElementsByClass((meter.TimeSignature, key.KeySignature))):
            if id(element) in seen:
                container.replace(element, copy.deepcopy(element))
            else:
                seen.add(id(element))


def _pitches(element) -> tuple[int, ...]:
    return tuple(sorted(p.midi for p in element.pitches))


def _untie_different_pitches(score) -> None:
    from music21 import tie

    parts = list(score.parts) or [score]
    for part in parts:
        notes = list(part.recurse().notes)
        for current, following in zip(notes, notes[1:], strict=False):
            if current.tie is None or current.tie.type not in ("start", "continue"):
                continue
            if _pitches(current) == _pitches(following):
                continue
            current.tie = None if current.tie.type == "start" else tie.Tie("stop")
            if following.tie is not None:
                following.tie = None if following.tie.type == "stop" else tie.Tie("start")


def _drop_empty_parts(score) -> bool:
    """Remove the parts without a note from a score that has others; True if any."""
    parts = list(score.parts)
    empty = [part for part in parts if not part.recurse().notes]
    if not empty or len(empty) == len(parts):
        return False
    for part in empty:
        score.remove(part)
    return True


def _strip_repeats(score) -> bool:
    """Remove repeat barlines, brackets and repeat expressions; True if any."""
    from music21 import bar, repeat, spanner, stream

    removed = False
    for measure in score.recurse().getElementsByClass(stream.Measure):
        if isinstance(measure.leftBarline, bar.Repeat):
            measure.leftBarline = None
            removed = True
        if isinstance(measure.rightBarline, bar.Repeat):
            measure.rightBarline = None
            removed = True
    for marker in list(score.recurse().getElementsByClass((spanner.RepeatBracket, repeat.RepeatExpression))):
        for site in list(marker.sites.get()):
            if isinstance(site, stream.Stream) and marker in site:
                site.remove(marker)
                removed = True
    return removed


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
