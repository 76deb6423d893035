"""Settings of ``midilm evaluate``, shared by the CLI and :func:`midilm.evaluate.evaluate_checkpoint`."""

from __future__ import annotations

from dataclasses import dataclass, field

from midilm.errors import ConfigError


@dataclass
class EvaluateConfig:
    """What to measure and how much of it."""

    task: str = field(
        default="continue",
        metadata={
            "help": "continue: likelihood and unprompted samples; accompany: write one held-out track of each multi-track file "
            "given the others; infill: write a held-out span of bars (see docs/evaluation.md)",
            "choices": ("continue", "accompany", "infill"),
        },
    )
    pieces: int = field(default=40, metadata={"help": "accompany/infill: multi-track files of the split to hold parts out of"})
    split: str = field(default="test", metadata={"help": "split of --data to evaluate on", "choices": ("train", "val", "test")})
    samples: int = field(
        default=16, metadata={"help": "samples to generate for music statistics, syntax and memorization (0 = likelihood only)"}
    )
    events: int = field(default=512, metadata={"help": "events per generated sample"})
    sample_batch: int = field(default=8, metadata={"help": "samples generated together in one batch"})
    likelihood: bool = field(default=True, metadata={"help": "measure nats per token/event and bits per second on the split"})
    window_events: int = field(default=0, metadata={"help": "likelihood window in events; 0 = the run's training window"})
    batch_size: int = field(default=16, metadata={"help": "likelihood windows per forward pass"})
    reference_pieces: int = field(
        default=100, metadata={"help": "files of the split drawn at random as the reference set of the music statistics"}
    )
    device: str = field(default="auto", metadata={"help": "auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps"})

    def validate(self) -> None:
        checks = [
            (self.task in ("continue", "accompany", "infill"), f"task must be continue, accompany or infill (got {self.task!r})"),
            (self.pieces >= 1, f"pieces must be >= 1 (got {self.pieces})"),
            (self.samples >= 0, f"samples must be >= 0 (got {self.samples})"),
            (self.events >= 1, f"events must be >= 1 (got {self.events})"),
            (self.sample_batch >= 1, f"sample_batch must be >= 1 (got {self.sample_batch})"),
            (self.window_events >= 0, f"window_events must be >= 0 (got {self.window_events})"),
            (self.batch_size >= 1, f"batch_size must be >= 1 (got {self.batch_size})"),
            (self.reference_pieces >= 2, f"reference_pieces must be >= 2 (got {self.reference_pieces})"),
            (self.likelihood or self.samples > 0, "nothing to do: likelihood is off and samples is 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
