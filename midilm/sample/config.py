"""Sampling and control settings shared by ``midilm generate``, the web app and the Python API."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from midilm.errors import ConfigError

PIECE_SECONDS = 180.0
"""The seconds limit of ``midilm generate`` and the app unless told otherwise:
a model that writes long pauses or long notes (an untrained one does) still
ends its pieces within a few minutes, with WAVs of a sane size. The Python
API and evaluation keep ``SamplingConfig``'s own default, no limit."""

SEED_RANGE = 1_000_000
"""Fresh seeds are drawn below this: short enough to read aloud and type back."""


def fresh_seed() -> int:
    """A random seed, different at every call (the operating system's entropy, not
    a generator a test could have seeded), to be printed and recorded."""
    return secrets.randbelow(SEED_RANGE)


@dataclass
class SamplingConfig:
    """How many samples, how long, and how adventurous."""

    num_samples: int = field(default=1, metadata={"help": "samples generated together in one batch", "metavar": "N"})
    events: int = field(
        default=512, metadata={"help": "events to generate per sample (prompt and control events not counted)", "metavar": "N"}
    )
    seconds: float = field(
        default=0.0,
        metadata={"help": "also stop once this many seconds of music follow the prompt; 0: no limit", "metavar": "S"},
    )
    min_events: int = field(default=0, metadata={"help": "forbid the end token before this many generated events", "metavar": "N"})
    temperature: float = field(default=1.0, metadata={"help": "softmax temperature; 0: always the most likely token", "metavar": "T"})
    top_p: float = field(
        default=0.94,
        metadata={"help": "nucleus sampling: keep the most likely tokens up to this probability mass; 1: off", "metavar": "P"},
    )
    top_k: int = field(default=20, metadata={"help": "keep only the k most likely tokens; 0: off", "metavar": "K"})
    seed: int = field(
        default_factory=fresh_seed,
        metadata={
            "help": "random seed; sample i uses seed + i, so one sample can be made again alone "
            "(default: a fresh seed each time, printed and written to each sample's .json)",
            "metavar": "N",
        },
    )
    weights: str = field(
        default="auto",
        metadata={
            "help": "eager decoder: auto uses int8 weights on a CPU (about 2x faster, log-probabilities within ~0.02), full elsewhere; int8 or full to choose",
            "choices": ("auto", "int8", "full"),
        },
    )

    decoder: str = field(
        default="auto",
        metadata={
            "help": "what computes the logits: auto (onnx on a CPU when onnxruntime is installed, else eager), onnx (ONNX Runtime), compile (torch.compile), eager (PyTorch; the GPU path)",
            "choices": ("auto", "onnx", "compile", "eager"),
        },
    )
    threads: int = field(
        default=1,
        metadata={
            "help": "CPU threads while sampling (0: torch's setting): one token at a time is too small to split, and extra threads stall when other jobs share the cores",
            "metavar": "N",
        },
    )

    # ----- locks: rules on what the model may write, applied through the sampler's masks -----
    allow_instruments: str = field(
        default="",
        metadata={
            "help": "new notes only on these General MIDI instruments (names or program numbers) and, with 'drums' or a kit name, "
            "the drum kit, e.g. 'piano,bass,drums' (default: any)"
        },
    )
    disable_channels: str = field(
        default="", metadata={"help": "MIDI channels 1-16 the model may not use (10 is the drum channel), e.g. '10' or '2,3'"}
    )
    patch_change: bool = field(default=True, metadata={"help": "let the model change instruments (--no-patch-change: never)"})
    control_change: bool = field(
        default=True, metadata={"help": "let the model write control changes such as pedal and volume (--no-control-change: never)"}
    )
    max_polyphony: int = field(
        default=0,
        metadata={"help": "a new pitched note starts only where fewer than N pitched notes sound (drums not counted; 0 = no limit)"},
    )

    def validate(self) -> None:
        checks = [
            (self.max_polyphony >= 0, f"max_polyphony must be >= 0 (got {self.max_polyphony})"),
            (self.threads >= 0, f"threads must be >= 0 (got {self.threads})"),
            (self.num_samples >= 1, f"num_samples must be >= 1 (got {self.num_samples})"),
            (self.events >= 1, f"events must be >= 1 (got {self.events})"),
            (self.seconds >= 0, f"seconds must be >= 0 (got {self.seconds})"),
            (0 <= self.min_events <= self.events, f"min_events must be in 0..events ({self.events}) (got {self.min_events})"),
            (self.temperature >= 0, f"temperature must be >= 0 (got {self.temperature})"),
            (0 < self.top_p <= 1, f"top_p must be in (0, 1] (got {self.top_p})"),
            (self.top_k >= 0, f"top_k must be >= 0 (got {self.top_k})"),
            (self.weights in ("auto", "int8", "full"), f"weights must be auto, int8 or full (got {self.weights!r})"),
            (self.decoder in ("auto", "onnx", "compile", "eager"), f"decoder must be auto, onnx, compile or eager (got {self.decoder!r})"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


@dataclass
class Controls:
    """Musical settings written as prompt events before generation, as SkyTNT's app does."""

    instruments: str = field(
        default="",
        metadata={
            "help": "comma-separated General MIDI instruments by name or program number, e.g. 'piano,violin' or '0,40'",
            "metavar": "LIST",
        },
    )
    drums: str = field(
        default="",
        metadata={
            "help": "drum kit on MIDI channel 10 (standard, room, power, electronic, tr-808, jazz, brush, orchestra, sfx, or a program number)",
            "metavar": "KIT",
        },
    )
    bpm: int = field(default=0, metadata={"help": "tempo in beats per minute; 0: the model chooses", "metavar": "BPM"})
    time_signature: str = field(default="", metadata={"help": "time signature such as 4/4, 3/4 or 6/8", "metavar": "N/D"})
    key: str = field(default="", metadata={"help": "key signature such as C, G, Bb, F#m or 'D minor'"})
    lock_instruments: bool = field(
        default=True,
        metadata={
            "help": "with --instruments or --drums: every named instrument plays and nothing else does, whatever the model learnt "
            "(--no-lock-instruments: they only start the piece)"
        },
    )

    def any(self) -> bool:
        return bool(self.instruments or self.drums or self.bpm or self.time_signature or self.key)
