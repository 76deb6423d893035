"""One press of Generate: load the model, build the start rows, sample, and
write every sample as MIDI, WAV and piano roll for the page to show."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from midilm.app.checkpoints import ModelCache
from midilm.sample import Controls, SamplingConfig, sample_events
from midilm.sample.locks import generation_setup
from midilm.sample.output import write_samples
from midilm.sample.prompt import load_prompt
from midilm.tokenizer import summarize

Progress = Callable[[int, int, str], None]
"""``progress(done, total, unit)``: events generated, then samples rendered."""


@dataclass
class GenerationRequest:
    """What the page asks for: a prompt file (cut to its first events or
    seconds; 0 keeps it whole) or controls (not both), and the sampling settings."""

    checkpoint: str
    sampling: SamplingConfig
    controls: Controls
    prompt: Path | None = None
    prompt_events: int = 0
    prompt_seconds: float = 0.0


@dataclass
class Piece:
    """One generated sample: its files and what the page says about it."""

    index: int
    seed: int
    generated_events: int
    seconds: float
    midi: Path
    audio: Path
    piano_roll: Path
    tokens: Path
    record: Path

    @property
    def title(self) -> str:
        return f"Sample {self.index + 1} · seed {self.seed} · {self.generated_events} new events · {self.seconds:.1f} s"


@dataclass
class Generation:
    """The pieces of one press of Generate, where they are and how it went."""

    pieces: list[Piece]
    folder: Path
    seconds: float
    events_per_s: float
    stop_reason: str

    @property
    def summary(self) -> str:
        return (
            f"{len(self.pieces)} sample(s), {sum(p.generated_events for p in self.pieces)} events in {self.seconds:.1f} s "
            f"({self.events_per_s:.1f} events/s, stopped by {self.stop_reason}); files in `{self.folder}`"
        )


def generate_pieces(models: ModelCache, request: GenerationRequest, out_root: Path, progress: Progress | None = None) -> Generation:
    """Generate the request's samples into a new folder under ``out_root``."""
    loaded = models.get(request.checkpoint)
    prompt = None
    if request.prompt is not None:
        prompt = load_prompt(request.prompt, loaded.run.data.tokenizer, events=request.prompt_events, seconds=request.prompt_seconds)
    setup = generation_setup(request.sampling, prompt, request.controls, loaded.model.config.vocab_size)
    total = request.sampling.events
    on_event = None if progress is None else lambda done: progress(done, total, "events")
    result = setup.finish(sample_events(loaded.model, request.sampling, setup.start, on_event=on_event, constraints=setup.constraints))
    out_root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=out_root))
    settings = {
        "checkpoint": str(loaded.source),
        "arch": loaded.run.model.arch,
        "sampling": request.sampling,
        "controls": request.controls,
        "prompt": None if request.prompt is None else request.prompt.name,
    }
    on_sample = None if progress is None else lambda i, n: progress(i, n, "samples rendered")
    written = write_samples(folder, result, settings, seed=request.sampling.seed, audio=True, piano_roll=True, on_sample=on_sample)
    pieces = [
        Piece(
            index=i,
            seed=request.sampling.seed + i,
            generated_events=result.generated_events[i],
            seconds=summarize(tokens).seconds,
            midi=files["midi"],
            audio=files["audio"],
            piano_roll=files["piano_roll"],
            tokens=files["tokens"],
            record=files["record"],
        )
        for i, (tokens, files) in enumerate(zip(result.samples, written, strict=True))
    ]
    return Generation(pieces, folder, result.seconds, result.events_per_s, result.stop_reason)
