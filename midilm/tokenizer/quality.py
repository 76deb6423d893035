"""The reference's ``check_quality``: does a tokenized file look like usable music?"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from midilm import vocab
from midilm.tokenizer.events import EventTable


@dataclass(frozen=True)
class QualityThresholds:
    """Limits of :func:`check_quality` (the reference's defaults)."""

    alignment_min: float = field(
        default=0.3, metadata={"help": "least share of notes on the two most used 1/16 positions (rejects unquantised recordings)"}
    )
    tonality_min: float = field(default=0.8, metadata={"help": "least mean share of the 7 most used pitch classes per window"})
    piano_max: float = field(
        default=0.7, metadata={"help": "largest share of channels left on program 0 (ignored with 3 channels or fewer)"}
    )
    notes_bandwidth_min: float = field(
        default=3, metadata={"help": "least mean pitch span of sounding notes (rejects single melodic lines)"}
    )
    notes_density_max: float = field(default=50, metadata={"help": "densest window must have fewer notes per beat"})
    notes_density_min: float = field(default=2.5, metadata={"help": "densest window must have more notes per beat"})
    total_notes_max: int = field(default=20000, metadata={"help": "most notes"})
    total_notes_min: int = field(default=256, metadata={"help": "fewest notes"})
    note_window_size: int = field(default=16, metadata={"help": "window length in beats for tonality and density"})


def check_quality(tokens: np.ndarray, thresholds: QualityThresholds = QualityThresholds()) -> tuple[bool, list[str]]:
    """``(ok, reasons)``: reasons name the failed checks, among ``total_min``,
    ``total_max``, ``drum_only`` (decided first; the others are then skipped),
    ``alignment``, ``tonality``, ``bandwidth``, ``density`` and ``piano``."""
    events = EventTable.of(tokens)
    note_id, patch_id = vocab.EVENT_ID["note"], vocab.EVENT_ID["patch_change"]

    total = 0
    step_hist = [0] * vocab.STEPS_PER_BEAT
    windows: dict[int, list[int]] = {}
    sounding: list[tuple[int, int]] = []
    bandwidths: list[int] = []
    instruments: set[int] = set()  # channels seen with a melodic note or a program change
    piano_channels: set[int] = set()
    channels: set[int] = set()
    last_step = 0
    for kind, step, beat, time2, channel, pitch, patch, duration in zip(
        events.event_id.tolist(),
        events.step.tolist(),
        events.beat.tolist(),
        events.column("time2").tolist(),
        events.column("channel").tolist(),
        events.column("pitch").tolist(),
        events.column("patch").tolist(),
        events.column("duration").tolist(),
        strict=True,
    ):
        if kind == note_id:
            total += 1
            step_hist[time2] += 1
            if channel != vocab.DRUM_CHANNEL:
                if channel not in instruments:
                    instruments.add(channel)
                    piano_channels.add(channel)
                windows.setdefault(beat // thresholds.note_window_size, []).append(pitch)
            if step != last_step:
                sounding = [(end, p) for end, p in sounding if end > last_step]
                if sounding:
                    pitches = [p for _, p in sounding]
                    bandwidths.append(max(pitches) - min(pitches))
            sounding.append((step + duration - 1, pitch))
            channels.add(channel)
        elif kind == patch_id:
            instruments.add(channel)
            if patch == 0:
                piano_channels.add(channel)
            channels.add(channel)
        last_step = step

    reasons = []
    if total < thresholds.total_notes_min:
        reasons.append("total_min")
    if total > thresholds.total_notes_max:
        reasons.append("total_max")
    if not windows and total > 0:
        reasons.append("drum_only")
    if reasons:
        return False, reasons
    alignment = sum(sorted(step_hist, reverse=True)[:2]) / total
    tonality_list = []
    density_list = []
    for pitches in windows.values():
        classes = [0] * 12
        for pitch in pitches:
            classes[pitch % 12] += 1
        tonality_list.append(sum(sorted(classes, reverse=True)[:7]) / len(pitches))
        density_list.append(len(pitches) / thresholds.note_window_size)
    tonality = sum(sorted(tonality_list)) / len(tonality_list)
    bandwidth = sum(bandwidths) / len(bandwidths) if bandwidths else 0
    density = max(density_list)
    piano_max = 1 if len(channels) <= 3 else thresholds.piano_max
    if alignment < thresholds.alignment_min:
        reasons.append("alignment")
    if tonality < thresholds.tonality_min:
        reasons.append("tonality")
    if bandwidth < thresholds.notes_bandwidth_min:
        reasons.append("bandwidth")
    if not thresholds.notes_density_min < density < thresholds.notes_density_max:
        reasons.append("density")
    if len(piano_channels) / len(channels) > piano_max:
        reasons.append("piano")
    return not reasons, reasons
