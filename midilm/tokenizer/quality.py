"""The reference's ``check_quality``: does a tokenized file look like usable music?"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from midilm import vocab
from midilm.tokenizer.decode import _values
from midilm.tokenizer.encode import DRUM_CHANNEL
from midilm.tokenizer.grammar import check_shape, event_rows


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
    rows = check_shape(tokens)
    rows = rows[event_rows(rows, check_padding=False)]
    values = _values(rows)
    beat = np.cumsum(values[:, 0])
    time = (beat * vocab.PARAM_SIZES["time2"] + values[:, 1]).tolist()
    beats = beat.tolist()
    kinds = rows[:, 0].tolist()
    note_id, patch_id = vocab.EVENT_ID["note"], vocab.EVENT_ID["patch_change"]

    total = 0
    step_hist = [0] * vocab.PARAM_SIZES["time2"]
    windows: dict[int, list[int]] = {}
    sounding: list[tuple[int, int]] = []
    bandwidths: list[int] = []
    instruments: set[int] = set()  # channels seen with a melodic note or a program change
    piano_channels: set[int] = set()
    channels: set[int] = set()
    last_time = 0
    for kind, event_time, event_beat, params in zip(kinds, time, beats, values.tolist(), strict=True):
        if kind == note_id:
            channel, pitch, duration = params[3], params[4], params[6]
            total += 1
            step_hist[params[1]] += 1
            if channel != DRUM_CHANNEL:
                if channel not in instruments:
                    instruments.add(channel)
                    piano_channels.add(channel)
                windows.setdefault(event_beat // thresholds.note_window_size, []).append(pitch)
            if event_time != last_time:
                sounding = [(end, p) for end, p in sounding if end > last_time]
                if sounding:
                    pitches = [p for _, p in sounding]
                    bandwidths.append(max(pitches) - min(pitches))
            sounding.append((event_time + duration - 1, pitch))
            channels.add(channel)
        elif kind == patch_id:
            channel, program = params[3], params[4]
            instruments.add(channel)
            if program == 0:
                piano_channels.add(channel)
            channels.add(channel)
        last_time = event_time

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
