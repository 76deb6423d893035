"""What tokenization dropped, added and noticed, so that no loss is silent."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from midilm.tokenizer.score import MidiScore

DROP_REASONS: dict[str, str] = {
    "track_limit": "events in tracks after the first 128 (the reference reads only 128)",
    "smpte_tempo": "tempo changes in an SMPTE-timed file (its timing is converted at a fixed 120 bpm)",
    "invalid_channel": "note, program or control change on a channel outside 0..15",
    "invalid_tempo": "tempo change of 0 microseconds per beat",
    "invalid_time_signature": "time signature with a numerator outside 1..16 or a denominator outside 2..16",
    "invalid_key_signature": "key signature with sharps/flats outside -7..7 or a mode other than major/minor",
    "repeated_patch": "program change equal to the channel's current program in that track",
    "cc_within_eps": "control change within cc_eps of the last kept value of that controller (starting at 0)",
    "tempo_within_eps": "tempo change within tempo_eps bpm of the last kept tempo of that track (starting at 0)",
    "duplicate": "replaced by a later event of the same kind, 1/16 step, track, channel and pitch/controller",
    "note_overlap": "note cut to length 0 by the next note of the same pitch, channel and track in the same 1/16 step",
    "key_signature_untracked": "key signature on a track that keeps no instrument after renumbering",
    "default_key_signature": "C major/A minor key signature removed because no key could be detected",
    "setup_replaced": "setting before the first note superseded by a later one (only the last value is kept, at time 0)",
    "empty_channel": "program or control change on a channel without notes",
    "out_of_range": "a value outside the vocabulary (corrupt data bytes >= 128, more than 127 tracks, ...)",
    "long_note": "note of 2048 sixteenths (128 beats) or more",
    "gap": "128 beats or more after the previous event: the stream ends there (every later event is counted)",
}
"""Every reason an event can be dropped for, with the sentence that explains it."""

ADD_REASONS: dict[str, str] = {
    "default_patch": "program 0 added at time 0 for a channel with notes but no program change",
    "key_signature_copy": "key signature copied onto each further track its original track was split into",
    "detected_key_signature": "key signature added from the key detected in the notes",
}
"""Every reason an event can be added for."""


@dataclass
class TokenizeReport:
    """Outcome of tokenizing one file.

    ``dropped`` and ``added`` count events by reason (keys of
    :data:`DROP_REASONS` and :data:`ADD_REASONS`); they balance:
    ``input_events + sum(added) == output_events + sum(dropped)``, where
    ``input_events`` counts the notes, program and control changes, tempos,
    time and key signatures the file holds and ``output_events`` the rows
    between BOS and EOS.
    """

    source: str | None = None
    ticks_per_beat: float = 0
    tracks: int = 0
    input_events: int = 0
    output_events: int = 0
    dropped: Counter = field(default_factory=Counter)
    added: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)

    def record_score(self, score: MidiScore) -> None:
        """Take what the reader found: the score's size, what it already left out, its warnings."""
        self.record_read(score.ticks_per_beat, score.tracks, len(score.events), score.dropped, score.warnings)

    def record_read(self, ticks_per_beat: float, tracks: int, events: int, dropped: dict[str, int], warnings: Sequence[str]) -> None:
        """Take what the reader found: ``events`` tokenizable events read, ``dropped`` left out by reason."""
        self.ticks_per_beat = ticks_per_beat
        self.tracks = tracks
        self.input_events = events + sum(dropped.values())
        for reason, count in dropped.items():
            self.drop(reason, count)
        self.warnings.extend(warnings)

    def drop(self, reason: str, count: int = 1) -> None:
        if reason not in DROP_REASONS:
            raise KeyError(f"unknown drop reason {reason!r}")
        if count:
            self.dropped[reason] += int(count)

    def add(self, reason: str, count: int = 1) -> None:
        if reason not in ADD_REASONS:
            raise KeyError(f"unknown add reason {reason!r}")
        if count:
            self.added[reason] += int(count)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    @property
    def lossy(self) -> bool:
        """Whether anything other than the reference's routine clean-up was
        dropped: data outside the vocabulary, a gap, long notes, extra tracks."""
        return any(self.dropped[r] for r in ("track_limit", "out_of_range", "long_note", "gap", "invalid_channel"))

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "ticks_per_beat": self.ticks_per_beat,
            "tracks": self.tracks,
            "input_events": self.input_events,
            "output_events": self.output_events,
            "dropped": dict(sorted(self.dropped.items())),
            "added": dict(sorted(self.added.items())),
            "warnings": list(self.warnings),
        }

    def format(self) -> str:
        """Readable multi-line summary (what ``midilm info`` prints)."""
        lines = [
            f"{self.source or '<bytes>'}: {self.input_events} events in {self.tracks} tracks "
            f"({self.ticks_per_beat:g} ticks per beat) -> {self.output_events} token rows"
        ]
        for title, counts, reasons in (("dropped", self.dropped, DROP_REASONS), ("added", self.added, ADD_REASONS)):
            for reason, count in sorted(counts.items()):
                lines.append(f"  {title} {count:>6} {reason}: {reasons[reason]}")
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    __str__ = format
