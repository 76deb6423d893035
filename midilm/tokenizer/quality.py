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


def describe_reasons(thresholds: QualityThresholds = QualityThresholds()) -> dict[str, str]:
    """What each reason :func:`check_quality` gives means, with the thresholds in force."""
    t = thresholds
    return {
        "total_min": f"fewer than {t.total_notes_min} notes",
        "total_max": f"more than {t.total_notes_max} notes",
        "drum_only": "only drum notes",
        "alignment": f"less than {t.alignment_min:.0%} of the notes start on the two most used 1/16-beat positions "
        "(the timing is not on a beat grid, as in a live recording)",
        "tonality": f"in {t.note_window_size}-beat windows, the 7 most used pitch classes hold less than {t.tonality_min:.0%} "
        "of the notes on average (no clear key)",
        "bandwidth": f"notes sounding together span less than {t.notes_bandwidth_min:g} semitones on average (a single melodic line)",
        "density": f"the densest {t.note_window_size}-beat window has {t.notes_density_min:g} notes per beat or fewer, "
        f"or {t.notes_density_max:g} or more",
        "piano": f"more than {t.piano_max:.0%} of the channels stay on program 0 (piano), with more than 3 channels",
    }


def format_quality(ok: bool, reasons: list[str], thresholds: QualityThresholds = QualityThresholds()) -> str:
    """The verdict in words: ``quality: ok``, or each failed check and what it means.
    The checks are the reference's filter of training data; failing them does not stop tokenizing or training."""
    if ok:
        return "quality: ok"
    meaning = describe_reasons(thresholds)
    lines = [f"quality: fails {', '.join(reasons)} (the reference's filter of training data)"]
    lines += [f"  {reason}: {meaning[reason]}" for reason in reasons]
    return "\n".join(lines)


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
