"""Training settings, and the run record that ties a run to its model, data and tokenizer.

``TrainConfig`` holds what the optimiser and the loop need; its defaults follow
the design notebook (AdamW 3e-4, weight decay 0.01, clip 1.0, batch 32 on GPU and
16 on CPU, windows as long as the model's context with half a window's stride,
ReduceLROnPlateau factor 0.5 patience 2, early stopping patience 5, one
evaluation per epoch). Window lengths count events, whatever the architecture.
``RunConfig`` is what
``RUN/config.json`` stores: resuming takes every setting from it, and a
checkpoint is rebuilt from it rather than from code defaults.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from midilm import __version__
from midilm.config import from_dict, read_json, to_dict
from midilm.errors import ConfigError
from midilm.validate import OBJECT, TEXT, check_object

SCHEDULES = ("plateau", "cosine", "constant")
MAX_ANTICIPATION_BEATS = 32
"""Kept events are written at most this far ahead (their offset must fit the tokens, see midilm.anticipation)."""
FINE_TUNE_LR = 1e-4
"""Default learning rate with ``--init`` (a third of the from-scratch 3e-4), so
fine-tuning adapts a trained model instead of overwriting it."""
LORA_LR = 1e-3
"""Default learning rate with ``--lora``: adapters start from zero and hold few
weights, and at 1e-4 they learn several times slower (bench/finetune.py)."""


@dataclass
class TrainConfig:
    """Optimiser, schedule, data and loop settings of one training run."""

    lr: float = field(
        default=3e-4, metadata={"help": f"peak learning rate of AdamW (with --init the default is {FINE_TUNE_LR}, with --lora {LORA_LR})"}
    )
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    grad_clip: float = field(default=1.0, metadata={"help": "clip the gradient norm to this (0 disables)"})
    batch_size: int = field(
        default=0, metadata={"help": "windows per optimizer step, summed over processes and accumulation steps; 0 = 32 on GPU, 16 on CPU"}
    )
    grad_accum: int = field(default=1, metadata={"help": "micro-batches accumulated per optimizer step (each process)"})
    window_events: int = field(default=0, metadata={"help": "training window in events; 0 = the model's context"})
    stride_events: int = field(default=0, metadata={"help": "distance between window starts in events; 0 = half the window"})
    max_steps: int = field(default=0, metadata={"help": "stop after this many optimizer steps (0 = run --max-epochs)"})
    max_epochs: int = field(default=30, metadata={"help": "stop after this many passes over the train split"})
    max_minutes: float = field(default=0.0, metadata={"help": "stop after this much wall-clock training time (0 = no limit)"})
    eval_every: int = field(
        default=0, metadata={"help": "evaluate on the val split every N steps (0 = once per epoch); always at the last step"}
    )
    eval_batches: int = field(
        default=32, metadata={"help": "evaluate on N batches of val windows spread evenly over the split (0 = every val window)"}
    )
    schedule: str = field(default="plateau", metadata={"help": "learning-rate schedule", "choices": SCHEDULES})
    warmup_steps: int = field(default=0, metadata={"help": "linear warmup steps (cosine and constant schedules)"})
    min_lr_ratio: float = field(default=0.1, metadata={"help": "cosine: final lr as a fraction of --lr"})
    plateau_factor: float = field(default=0.5, metadata={"help": "plateau: multiply lr by this when val loss stalls"})
    plateau_patience: int = field(default=2, metadata={"help": "plateau: evaluations without improvement before lowering lr"})
    early_stop_patience: int = field(default=5, metadata={"help": "stop after N evaluations without improvement (0 disables)"})
    seed: int = field(default=42, metadata={"help": "seed of weights, data order, dropout and augmentation"})
    device: str = field(default="auto", metadata={"help": "auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps"})
    precision: str = field(
        default="auto", metadata={"help": "auto (bf16 autocast on CUDA, fp32 elsewhere), bf16 or fp32", "choices": ("auto", "bf16", "fp32")}
    )
    compile: bool = field(default=False, metadata={"help": "torch.compile the model"})
    num_workers: int = field(default=0, metadata={"help": "DataLoader worker processes"})
    random_offset: bool = field(default=False, metadata={"help": "shift window starts randomly each epoch"})
    augment: bool = field(default=False, metadata={"help": "random pitch/velocity/tempo shifts of train windows (never val/test)"})
    log_every: int = field(default=10, metadata={"help": "write train loss to metrics.jsonl every N steps"})
    checkpoint_every: int = field(
        default=0, metadata={"help": "also save the 'last' checkpoint every N steps (0 = at evaluations and the end)"}
    )
    tensorboard: bool = field(default=False, metadata={"help": "also log to RUN/tensorboard (needs the tensorboard package)"})
    freeze_embeddings: bool = field(default=False, metadata={"help": "with --init: keep the token embeddings fixed"})
    lora: int = field(
        default=0,
        metadata={
            "help": "with --init: train LoRA adapters of this rank on the frozen model; checkpoints hold only the adapters (0: train every weight)"
        },
    )
    lora_alpha: float = field(
        default=0.0, metadata={"help": "LoRA scaling numerator: updates are scaled by alpha / rank (0: twice the rank)"}
    )
    lora_targets: str = field(
        default="",
        metadata={
            "help": "comma-separated names of the linear layers to adapt (default: the architecture's attention and MLP projections)"
        },
    )
    lora_dropout: float = field(default=0.0, metadata={"help": "dropout on the input of the LoRA adapters"})
    anticipation: float = field(
        default=0.0,
        metadata={
            "help": "also teach the model to read kept events this many beats ahead of their time (Anticipatory Music Transformer), "
            "so accompany and infill can plan towards the music they keep; 0 = off (see docs/accompany.md)"
        },
    )

    def validate(self) -> None:
        """Refuse settings that cannot work, before anything is built."""
        checks = [
            (self.lr > 0, f"lr must be > 0 (got {self.lr})"),
            (self.batch_size >= 0, f"batch_size must be >= 0 (got {self.batch_size})"),
            (self.grad_accum >= 1, f"grad_accum must be >= 1 (got {self.grad_accum})"),
            (
                self.window_events == 0 or self.window_events >= 2,
                f"window_events must be 0 (the model's context) or >= 2 (got {self.window_events})",
            ),
            (self.stride_events >= 0, f"stride_events must be >= 0 (got {self.stride_events})"),
            (self.eval_batches >= 0, f"eval_batches must be >= 0 (got {self.eval_batches})"),
            (self.max_steps >= 0 and self.max_epochs >= 1, "max_steps must be >= 0 and max_epochs >= 1"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)} (got {self.schedule!r})"),
            (self.schedule != "cosine" or self.max_steps > 0, "the cosine schedule needs --max-steps"),
            (self.eval_every >= 0 and self.log_every >= 1, "eval_every must be >= 0 and log_every >= 1"),
            (self.lora >= 0 and self.lora_alpha >= 0, f"lora (rank) and lora_alpha must be >= 0 (got {self.lora}, {self.lora_alpha})"),
            (0.0 <= self.lora_dropout < 1.0, f"lora_dropout must be in [0, 1) (got {self.lora_dropout})"),
            (not self.lora or not self.freeze_embeddings, "--lora already freezes every weight of the model; drop --freeze-embeddings"),
            (
                0 <= self.anticipation <= MAX_ANTICIPATION_BEATS,
                f"anticipation must be in 0..{MAX_ANTICIPATION_BEATS} beats (got {self.anticipation})",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def resolved(self, context_events: int) -> TrainConfig:
        """A validated copy whose window, stride and LoRA alpha are explicit for a
        model of ``context_events``; refuses a window the model cannot hold."""
        self.validate()
        window = self.window_events or context_events
        if window > context_events:
            raise ConfigError(
                f"window_events {window} does not fit the model's context of {context_events} events (lower --window-events or raise --context-events)"
            )
        stride = self.stride_events or max(1, window // 2)
        if stride > window:
            raise ConfigError(
                f"stride_events {stride} is longer than the window ({window} events): events between windows would never be seen"
            )
        lora_alpha = self.lora_alpha or 2.0 * self.lora
        return dataclasses.replace(self, window_events=window, stride_events=stride, lora_alpha=lora_alpha)


def upgrade_train_dict(data: Any, positions_per_event: int) -> Any:
    """A train config dict of an older midilm in today's form: ``seq_len`` and
    ``stride`` (in the model's positions) become ``window_events`` and ``stride_events``."""
    if not isinstance(data, dict) or not {"seq_len", "stride"} & set(data):
        return data
    upgraded = dict(data)
    for old, new in (("seq_len", "window_events"), ("stride", "stride_events")):
        if old in upgraded:
            positions = upgraded.pop(old)
            if not isinstance(positions, int) or positions % positions_per_event:
                raise ConfigError(f"train {old}: {positions!r} positions are not a whole number of {positions_per_event}-token events")
            upgraded.setdefault(new, positions // positions_per_event)
    return upgraded


@dataclass
class DataRef:
    """Which store a run trains on, and what that store was built with."""

    store: str = ""
    identity: str = ""
    tokenizer: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunConfig:
    """Everything ``RUN/config.json`` records: enough to rebuild the model and resume."""

    model: Any = None  # midilm.model.ModelConfig (typed loosely to keep this module torch-free)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataRef = field(default_factory=DataRef)
    vocab: dict[str, Any] = field(default_factory=dict)
    init: str = ""
    init_sha256: str = ""
    """Content hash of the ``init`` model's weights file: a LoRA run is applied only on that base."""
    midilm_version: str = __version__

    def to_json(self) -> str:
        data = {
            "model": to_dict(self.model),
            "train": to_dict(self.train),
            "data": to_dict(self.data),
            "vocab": self.vocab,
            "init": self.init,
            "init_sha256": self.init_sha256,
            "midilm_version": self.midilm_version,
        }
        return json.dumps(data, indent=2)

    @classmethod
    def from_json_dict(cls, data: Any, source: str) -> RunConfig:
        """A run config from its JSON form, written by this or an older midilm (upgraded on read)."""
        from midilm.model import ModelConfig, architecture
        from midilm.model.config import upgrade_model_dict

        if not isinstance(data, dict):
            raise ConfigError(f"{source}: a run config is a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown run setting(s) {', '.join(unknown)}")
        sections = {"model": OBJECT, "train": OBJECT, "data": OBJECT, "vocab": OBJECT, "init": TEXT, "midilm_version": TEXT}
        check_object(data, sections, where=source, error=ConfigError)
        model = from_dict(ModelConfig, upgrade_model_dict(data.get("model", {})), source=f"{source}:model")
        train = upgrade_train_dict(data.get("train", {}), architecture(model.arch).positions_per_event)
        return cls(
            model=model,
            train=from_dict(TrainConfig, train, source=f"{source}:train"),
            data=from_dict(DataRef, data.get("data", {}), source=f"{source}:data"),
            vocab=data.get("vocab", {}),
            init=data.get("init", ""),
            init_sha256=data.get("init_sha256", ""),
            midilm_version=data.get("midilm_version", ""),
        )

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        return cls.from_json_dict(read_json(path, "midilm run config"), str(path))
