"""Writing samples: MIDI, the token array, and on request a WAV and a piano roll, plus a JSON record."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from midilm import vocab
from midilm.errors import RenderError

STOP_REASONS = {
    "eos": "ended by the model",
    "events": "stopped at the event limit",
    "seconds": "stopped at the seconds limit",
    "interrupted": "stopped by Ctrl-C",
    "stopped": "stopped with the Stop button",
}
"""Why a sample stopped, as a user reads it, by the sampler's stop reason."""


@dataclass
class WrittenSample:
    """The files of one sample and what a listener should know about it."""

    files: dict[str, Path]
    seed: int
    generated_events: int
    seconds: float
    """How long the whole piece (prompt included) lasts."""
    stopped_by: str
    """``eos``, ``events``, ``seconds``, ``interrupted`` or ``stopped`` (keys of :data:`STOP_REASONS`)."""
    notes: list[str] = field(default_factory=list)
    """Things to say about the files, such as a WAV shorter than the piece."""

    def describe(self, limits: dict[str, str] | None = None) -> str:
        """One line for the terminal: the MIDI file, its length, and why it
        stopped; ``limits`` names the setting behind a limit (``{"events": "--events 512"}``)."""
        why = STOP_REASONS[self.stopped_by]
        if limits and self.stopped_by in limits:
            why += f", {limits[self.stopped_by]}"
        return f"{self.files['midi']}  ({self.generated_events} new events, {self.seconds:.1f} s; {why})"


def sample_stop_reasons(result: Any) -> list[str]:
    """Why each sample of a ``GenerationResult`` stopped: a sample whose last
    row is the end token was ended by the model; the others stopped with the batch."""
    return ["eos" if len(tokens) and tokens[-1, 0] == vocab.EOS else result.stop_reason for tokens in result.samples]


def prompt_end_seconds(tokens: np.ndarray, start_events: int) -> float:
    """When the first generated event of a continued prompt starts, in seconds."""
    from midilm.sample.clock import onset_seconds

    return float(onset_seconds(tokens[: start_events + 1])[-1])


def write_sample(
    out_dir: Path,
    name: str,
    tokens: np.ndarray,
    record: dict[str, Any],
    *,
    audio: bool,
    piano_roll: bool,
    prompt_events: int = 0,
    kept_rows: np.ndarray | None = None,
    title: str | None = None,
) -> tuple[dict[str, Path], list[str]]:
    """Files of one sample, named ``name.*`` in ``out_dir``, by kind; and notes
    about them for the user. ``prompt_events``: rows that came from a prompt
    file (BOS included), marked on the piano roll; ``kept_rows``: rows kept from
    the input (accompaniment, infilling), drawn in grey."""
    from midilm.tokenizer import tokens_to_midi

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"midi": out_dir / f"{name}.mid", "tokens": out_dir / f"{name}.npy"}
    notes = []
    midi_bytes = tokens_to_midi(tokens)
    files["midi"].write_bytes(midi_bytes)
    np.save(files["tokens"], tokens)
    if audio:
        from midilm.render import render_wav

        wav = out_dir / f"{name}.wav"
        try:
            rendered = render_wav(midi_bytes, wav)
        except RenderError as exc:  # the MIDI file and the piano roll are still written
            notes.append(f"{wav.name}: not written: {exc}")
            record = {**record, "audio_error": str(exc)}
        else:
            files["audio"] = wav
            if rendered.cut:
                notes.append(f"{wav.name}: {rendered.describe()}")
                record = {**record, "audio_seconds": round(rendered.seconds, 3)}
    if piano_roll:
        from midilm.render import render_piano_roll

        files["piano_roll"] = out_dir / f"{name}.png"
        prompt_seconds = prompt_end_seconds(tokens, prompt_events) if prompt_events and len(tokens) > prompt_events else None
        render_piano_roll(tokens, files["piano_roll"], title=title or name, prompt_seconds=prompt_seconds, kept_rows=kept_rows)
    files["record"] = out_dir / f"{name}.json"
    record = {**record, "files": {kind: path.name for kind, path in files.items()}}
    files["record"].write_text(json.dumps(record, indent=2, default=_jsonable))
    return files, notes


def write_samples(
    out_dir: Path,
    result: Any,
    settings: dict[str, Any],
    *,
    seed: int,
    audio: bool,
    piano_roll: bool,
    prefix: str = "sample",
    prompt: bool = False,
    on_sample: Callable[[int, int], None] | None = None,
) -> list[WrittenSample]:
    """Every sample of a ``GenerationResult``, each with a JSON record of the
    shared ``settings`` (checkpoint, sampling, controls, prompt), its own seed,
    counts and why it stopped, and the run's timing. ``prompt``: the start rows
    came from a prompt file (the piano roll marks where it ends).
    ``on_sample(i, n)`` reports progress."""
    from midilm.tokenizer import summarize

    shared = {
        **settings,
        "start_events": result.start_events,
        "stop_reason": result.stop_reason,
        "timing": {"seconds": round(result.seconds, 3), "events_per_s": round(result.events_per_s, 2)},
    }
    written = []
    for i, (tokens, stopped_by) in enumerate(zip(result.samples, sample_stop_reasons(result), strict=True)):
        if on_sample is not None:
            on_sample(i, len(result.samples))
        record = {**shared, "sample": i, "seed": seed + i, "generated_events": result.generated_events[i], "stopped_by": stopped_by}
        files, notes = write_sample(
            out_dir,
            f"{prefix}-{i:02d}",
            tokens,
            record,
            audio=audio,
            piano_roll=piano_roll,
            prompt_events=result.start_events if prompt else 0,
        )
        written.append(WrittenSample(files, seed + i, result.generated_events[i], summarize(tokens).seconds, stopped_by, notes))
    return written


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
