"""What a token sequence holds, in musical terms (for stores' manifests and ``midilm info``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from midilm import vocab
from midilm.tokenizer.decode import _values
from midilm.tokenizer.grammar import check_shape, event_rows

DEFAULT_BPM = 120
"""Tempo before the first tempo event (the MIDI default)."""

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
                f"events {self.events}, notes {self.notes}, tracks {self.tracks}, channels {listed(self.channels)}",
                f"duration {self.seconds:.1f} s ({self.beats:g} beats)",
                f"tempo (bpm) {listed(self.tempos)}",
                f"time signature {listed(self.time_signatures)}",
                f"key signature {listed(self.key_signatures)}",
            ]
            + ([f"invalid rows {self.invalid_rows}"] if self.invalid_rows else [])
        )


def summarize(tokens: np.ndarray) -> TokenSummary:
    """Summarise token rows (BOS, EOS and invalid rows are not events)."""
    rows = check_shape(tokens)
    valid = event_rows(rows)
    markers = np.isin(rows[:, 0], [vocab.BOS, vocab.EOS])
    rows = rows[valid]
    values = _values(rows)
    kind = rows[:, 0]
    steps = np.cumsum(values[:, 0]) * vocab.PARAM_SIZES["time2"] + values[:, 1]
    is_note = kind == vocab.EVENT_ID["note"]
    uses_channel = np.isin(kind, [vocab.EVENT_ID[n] for n in ("note", "patch_change", "control_change")])
    end_steps = np.where(is_note, steps + values[:, 6], steps)
    tempo_rows = np.flatnonzero(kind == vocab.EVENT_ID["set_tempo"])
    time_rows = kind == vocab.EVENT_ID["time_signature"]
    key_rows = kind == vocab.EVENT_ID["key_signature"]
    total_steps = int(end_steps.max()) if len(rows) else 0
    return TokenSummary(
        events=len(rows),
        notes=int(np.count_nonzero(is_note)),
        tracks=len(np.unique(values[:, 2])),
        channels=np.unique(values[uses_channel, 3]).tolist(),
        seconds=_seconds(steps[tempo_rows], values[tempo_rows, 3], total_steps),
        beats=total_steps / vocab.PARAM_SIZES["time2"],
        tempos=values[tempo_rows, 3].tolist(),
        time_signatures=[f"{nn + 1}/{2 ** (dd + 1)}" for nn, dd in values[time_rows, 3:5].tolist()],
        key_signatures=[key_name(sf, mi) for sf, mi in values[key_rows, 3:5].tolist()],
        invalid_rows=int(np.count_nonzero(~valid & ~markers)),
    )


def _seconds(change_steps: np.ndarray, bpms: np.ndarray, total_steps: int) -> float:
    """Seconds from step 0 to ``total_steps`` with the tempo changing at
    ``change_steps`` (120 bpm before the first change; a bpm of 0 reads as 1)."""
    bounds = np.concatenate([[0], np.minimum(change_steps, total_steps), [total_steps]])
    tempo = np.concatenate([[DEFAULT_BPM], np.maximum(bpms, 1)])
    beats = np.diff(bounds) / vocab.PARAM_SIZES["time2"]
    return float(np.sum(beats * 60.0 / tempo))
