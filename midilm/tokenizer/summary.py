"""What a token sequence holds, in musical terms (for stores' manifests and ``midilm info``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from midilm import vocab
from midilm.tokenizer.events import EventTable
from midilm.tokenizer.grammar import check_shape

_MAJOR_KEYS = ["Cb", "Gb", "Db", "Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#"]
_MINOR_KEYS = ["Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#", "G#", "D#", "A#"]


def key_name(sf_token: int, minor: int) -> str:
    """Name of a key signature from its token values (sf + 7, mi)."""
    return f"{(_MINOR_KEYS if minor else _MAJOR_KEYS)[sf_token]} {'minor' if minor else 'major'}"


@dataclass
class TokenSummary:
    """Counts and musical facts of a token sequence."""

    events: int = 0
    notes: int = 0
    tracks: int = 0
    channels: list[int] = field(default_factory=list)
    """0-based, as in the tokens; :meth:`format` shows them 1-based, as players and ``midilm info``'s track list do."""
    seconds: float = 0.0
    """From the start to the end of the last note (or event), following the tempo events."""
    beats: float = 0.0
    tempos: list[int] = field(default_factory=list)
    """Bpm of each tempo event, in order."""
    time_signatures: list[str] = field(default_factory=list)
    key_signatures: list[str] = field(default_factory=list)
    invalid_rows: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        """A few readable lines."""

        def listed(items: list) -> str:
            distinct = list(dict.fromkeys(items))
            return ", ".join(map(str, distinct[:8])) + (" ..." if len(distinct) > 8 else "") if distinct else "none"

        return "\n".join(
            [
                f"events {self.events}, notes {self.notes}, tracks {self.tracks}, channels {listed([c + 1 for c in self.channels])}",
                f"duration {self.seconds:.1f} s ({self.beats:g} beats)",
                f"tempo (bpm) {listed(self.tempos)}",
                f"time signature {listed(self.time_signatures)}",
                f"key signature {listed(self.key_signatures)}",
            ]
            + ([f"invalid rows {self.invalid_rows}"] if self.invalid_rows else [])
        )


def summarize(tokens: np.ndarray) -> TokenSummary:
    """Summarise token rows (BOS, EOS and invalid rows are not events)."""
    events = EventTable.of(tokens, strict_padding=True)
    markers = np.isin(check_shape(tokens)[:, vocab.EVENT_SLOT], [vocab.BOS, vocab.EOS])
    steps = events.step
    is_note = events.is_event("note")
    end_steps = np.where(is_note, steps + events.column("duration"), steps)
    tempo = events.is_event("set_tempo")
    time_signature = events.is_event("time_signature")
    key_signature = events.is_event("key_signature")
    total_steps = int(end_steps.max()) if len(events) else 0
    nn, dd = events.column("nn")[time_signature].tolist(), events.column("dd")[time_signature].tolist()
    sf, mi = events.column("sf")[key_signature].tolist(), events.column("mi")[key_signature].tolist()
    return TokenSummary(
        events=len(events),
        notes=int(np.count_nonzero(is_note)),
        tracks=len(np.unique(events.column("track"))),
        channels=np.unique(events.column("channel")[events.is_event(*vocab.CHANNEL_EVENTS)]).tolist(),
        seconds=float(events.tempo_map().to_seconds(np.array([total_steps]))[0]),
        beats=total_steps / vocab.STEPS_PER_BEAT,
        tempos=events.column("bpm")[tempo].tolist(),
        time_signatures=[f"{n + vocab.NN_OFFSET}/{2 ** (d + vocab.DD_OFFSET)}" for n, d in zip(nn, dd, strict=True)],
        key_signatures=[key_name(s, m) for s, m in zip(sf, mi, strict=True)],
        invalid_rows=len(markers) - int(np.count_nonzero(markers)) - len(events),
    )
