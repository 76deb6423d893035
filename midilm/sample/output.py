"""Writing samples: MIDI, the token array, and on request a WAV and a piano roll, plus a JSON record."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np


def write_sample(out_dir: Path, name: str, tokens: np.ndarray, record: dict[str, Any], *, audio: bool, piano_roll: bool) -> dict[str, Path]:
    """Files of one sample, named ``name.*`` in ``out_dir``; returns them by kind."""
    from midilm.tokenizer import tokens_to_midi

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"midi": out_dir / f"{name}.mid", "tokens": out_dir / f"{name}.npy"}
    midi_bytes = tokens_to_midi(tokens)
    files["midi"].write_bytes(midi_bytes)
    np.save(files["tokens"], tokens)
    if audio:
        from midilm.render import render_wav

        files["audio"] = out_dir / f"{name}.wav"
        render_wav(midi_bytes, files["audio"])
    if piano_roll:
        from midilm.render import render_piano_roll

        files["piano_roll"] = out_dir / f"{name}.png"
        render_piano_roll(tokens, files["piano_roll"], title=name)
    files["record"] = out_dir / f"{name}.json"
    record = {**record, "files": {kind: path.name for kind, path in files.items()}}
    files["record"].write_text(json.dumps(record, indent=2, default=_jsonable))
    return files


def write_samples(
    out_dir: Path,
    result: Any,
    settings: dict[str, Any],
    *,
    seed: int,
    audio: bool,
    piano_roll: bool,
    prefix: str = "sample",
    on_sample: Callable[[int, int], None] | None = None,
) -> list[dict[str, Path]]:
    """Every sample of a ``GenerationResult``, each with a JSON record of the
    shared ``settings`` (checkpoint, sampling, controls, prompt), its own seed
    and counts, and the run's timing; ``on_sample(i, n)`` reports progress."""
    shared = {
        **settings,
        "start_events": result.start_events,
        "stop_reason": result.stop_reason,
        "timing": {"seconds": round(result.seconds, 3), "events_per_s": round(result.events_per_s, 2)},
    }
    written = []
    for i, tokens in enumerate(result.samples):
        if on_sample is not None:
            on_sample(i, len(result.samples))
        record = {**shared, "sample": i, "seed": seed + i, "generated_events": result.generated_events[i]}
        written.append(write_sample(out_dir, f"{prefix}-{i:02d}", tokens, record, audio=audio, piano_roll=piano_roll))
    return written


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
