"""Writing accompaniments and infills: each piece as MIDI, tokens, a JSON record,
and on request a WAV and a piano roll with the kept notes in grey and the new ones in colour."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from midilm.sample.around import AroundResult
from midilm.sample.output import WrittenSample, sample_stop_reasons, write_sample


def write_pieces(
    out_dir: Path,
    result: AroundResult,
    settings: dict[str, Any],
    *,
    seed: int,
    audio: bool,
    piano_roll: bool,
    prefix: str,
    on_piece: Callable[[int, int], None] | None = None,
) -> list[WrittenSample]:
    """Files of every piece of ``result`` (``prefix-NN.*``) with a record of the
    shared ``settings``, the sampling settings used (the event budget included), the piece's seed, its kept and new events, why it stopped and the run's timing."""
    from midilm.tokenizer import summarize

    generation = result.generation
    shared = {
        **settings,
        "sampling": result.config,
        "mode": result.mode,
        "voices": [voice.describe() for voice in result.plan.voices],
        "stop_reason": generation.stop_reason,
        "timing": {"seconds": round(generation.seconds, 3), "events_per_s": round(generation.events_per_s, 2)},
    }
    written = []
    stops = sample_stop_reasons(result)
    for i, (tokens, kept, stopped_by) in enumerate(zip(result.samples, result.kept_rows, stops, strict=True)):
        if on_piece is not None:
            on_piece(i, len(result.samples))
        new_events = int(len(tokens) - 2 - kept.sum())
        record = {
            **shared,
            "sample": i,
            "seed": seed + i,
            "kept_events": int(kept.sum()),
            "new_events": new_events,
            "stopped_by": stopped_by,
        }
        name = f"{prefix}-{i:02d}"
        title = f"{name}: kept notes in grey, new ones in colour"
        files, notes = write_sample(out_dir, name, tokens, record, audio=audio, piano_roll=piano_roll, kept_rows=kept, title=title)
        written.append(WrittenSample(files, seed + i, new_events, summarize(tokens).seconds, stopped_by, notes))
    return written
