"""One press of Generate: load the model, build the start rows, sample (watched
and stoppable), and write every sample as MIDI, WAV and piano roll for the page to show."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from midilm.app.checkpoints import ModelCache
from midilm.sample import Controls, SamplingConfig
from midilm.sample.locks import generation_setup
from midilm.sample.output import STOP_REASONS, WrittenSample, write_samples
from midilm.sample.prompt import load_prompt
from midilm.sample.sampler import EventSampler

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
    adapter: str = ""
    """A LoRA adapter folded into the checkpoint ("": none)."""


@dataclass
class Piece:
    """One generated sample: its files and what the page says about it."""

    index: int
    seed: int
    generated_events: int
    seconds: float
    stopped_by: str
    midi: Path
    audio: Path | None
    """None when the WAV could not be rendered (its notes say why)."""
    piano_roll: Path
    tokens: Path
    record: Path
    notes: tuple[str, ...] = ()
    """What a listener should know about the files (a WAV shorter than the piece)."""

    @classmethod
    def of(cls, index: int, sample: WrittenSample) -> Piece:
        """The page's view of a sample written to disk."""
        files = sample.files
        return cls(
            index, sample.seed, sample.generated_events, sample.seconds, sample.stopped_by,
            files["midi"], files.get("audio"), files["piano_roll"], files["tokens"], files["record"], tuple(sample.notes),
        )  # fmt: skip

    @property
    def title(self) -> str:
        return (
            f"Sample {self.index + 1} · seed {self.seed} · {self.generated_events} new events · {self.seconds:.1f} s · "
            f"{STOP_REASONS[self.stopped_by]}"
        )


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
        seeds = sorted(p.seed for p in self.pieces)
        seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}-{seeds[-1]}"
        return (
            f"{len(self.pieces)} sample(s), {sum(p.generated_events for p in self.pieces)} events in {self.seconds:.1f} s "
            f"({self.events_per_s:.1f} events/s, {seed_text}); files in `{self.folder}`"
        )


class PieceRun:
    """One press of Generate, watched while it samples: :meth:`events` samples
    and reports progress, :meth:`live_piano_rolls` draws the pieces as they
    stand, :meth:`stop` ends sampling early keeping what exists, and
    :meth:`finish` writes the files."""

    def __init__(self, models: ModelCache, request: GenerationRequest) -> None:
        self.request = request
        self.loaded = models.get(request.checkpoint, request.adapter)
        prompt = None
        if request.prompt is not None:
            prompt = load_prompt(
                request.prompt, self.loaded.run.data.tokenizer, events=request.prompt_events, seconds=request.prompt_seconds
            )
        self.setup = generation_setup(request.sampling, prompt, request.controls, self.loaded.model.config.vocab_size)
        self.sampler = EventSampler(self.loaded.model, request.sampling, self.setup.start, constraints=self.setup.constraints)
        self._steps = self.sampler.steps()

    def events(self) -> Iterator[int]:
        """Sample; after each event, the number of events generated so far."""
        try:
            for _ in self._steps:
                yield self.sampler.done
        except KeyboardInterrupt:
            self.sampler.stop_reason = "interrupted"

    def stop(self) -> None:
        """End sampling now; what was generated is kept for :meth:`finish`."""
        self._steps.close()
        self.sampler.stop_reason = "stopped"

    def live_piano_rolls(self, folder: Path) -> list[Path]:
        """Piano rolls of the samples as they stand, drawn into ``folder`` (replaced at each call)."""
        from midilm.render import render_piano_roll

        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, tokens in enumerate(self.sampler.result().samples):
            path = folder / f"live-{i:02d}-{self.sampler.done}.png"
            render_piano_roll(tokens, path, title=f"sample {i + 1}, {self.sampler.done} events so far")
            paths.append(path)
        return paths

    def finish(self, out_root: Path, progress: Progress | None = None) -> Generation:
        """Write every sample into a new folder under ``out_root``."""
        result = self.setup.finish(self.sampler.result())
        request = self.request
        out_root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=out_root))
        settings = {
            "checkpoint": str(self.loaded.source),
            "adapter": request.adapter or None,
            "arch": self.loaded.run.model.arch,
            "sampling": request.sampling,
            "controls": request.controls,
            "prompt": None if request.prompt is None else request.prompt.name,
        }
        on_sample = None if progress is None else lambda i, n: progress(i, n, "samples rendered")
        written = write_samples(
            folder,
            result,
            settings,
            seed=request.sampling.seed,
            audio=True,
            piano_roll=True,
            prompt=request.prompt is not None,
            on_sample=on_sample,
        )
        pieces = [Piece.of(i, sample) for i, sample in enumerate(written)]
        return Generation(pieces, folder, result.seconds, result.events_per_s, result.stop_reason)


def generate_pieces(models: ModelCache, request: GenerationRequest, out_root: Path, progress: Progress | None = None) -> Generation:
    """Generate the request's samples into a new folder under ``out_root``."""
    run = PieceRun(models, request)
    for done in run.events():
        if progress is not None:
            progress(done, request.sampling.events, "events")
    return run.finish(out_root, progress)
