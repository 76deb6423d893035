"""Everything a run trains with, built once: device, model, data views, batches,
optimizer, schedule and position; and the checkpoints the loop writes beside it.

A run folder without a ``last`` checkpoint (a kill before the first one, even
after ``best/`` was written) starts again from step 0 with its recorded
config: every random draw flows from the run's seed, so it ends where an
uninterrupted run would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from midilm import anticipation, vocab
from midilm.errors import ConfigError
from midilm.hub import adapters
from midilm.runtime import autocast_dtype, resolve_device
from midilm.train import distributed
from midilm.train.batches import EpochBatches
from midilm.train.checkpoint import ADAPTER_WEIGHTS_FILE, existing_checkpoint, load_for_inference, load_weights, read_state, save_checkpoint
from midilm.train.config import RunConfig, TrainConfig
from midilm.train.report import Reporter
from midilm.train.schedule import LRSchedule

CONFIG_FILE = "config.json"
STEPS_PER_BEAT = vocab.PARAM_SIZES["time2"]


@dataclass
class Position:
    """Where the loop is: the resumable state besides weights and optimizer."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    best_val_loss: float = float("inf")
    best_step: int = 0
    scheduled_best: float = float("inf")
    evals_since_best: int = 0
    stop_reason: str = ""
    train_seconds: float = 0.0
    pending_eval: str = ""
    """"scheduled" or "final" while an evaluation that the step called for has not finished."""

    def advance(self, steps_per_epoch: int) -> bool:
        """Count one optimizer step; True when it ended an epoch."""
        self.step += 1
        self.step_in_epoch += 1
        if self.step_in_epoch < steps_per_epoch:
            return False
        self.epoch, self.step_in_epoch = self.epoch + 1, 0
        return True


def default_batch_size(device: torch.device) -> int:
    """The notebook's choice: 32 windows on an accelerator, 16 on the CPU."""
    return 16 if device.type == "cpu" else 32


class TrainingSession:
    """One process's share of a run; rank 0 alone writes files."""

    def __init__(self, run_dir: Path, run: RunConfig, store: Any, *, fresh: bool) -> None:
        self.run_dir, self.store = run_dir, store
        self.cluster = distributed.launched_cluster()
        self.device = self._device(run.train.device)
        distributed.init_process_group(self.cluster, self.device)
        self.amp_dtype = autocast_dtype(self.device, run.train.precision)
        self.batch_size = run.train.batch_size or default_batch_size(self.device)
        checkpoint = None if fresh else existing_checkpoint(run_dir / "last")
        self.model = self._build_model(run, from_init=checkpoint is None)
        run.train = run.train.resolved(self.model.config.context_events)
        if run.train.lora:
            self._add_adapters(run.train)
        self.run = run
        self.report = Reporter(run_dir, run.model.arch, is_main=self.cluster.is_main, tensorboard=run.train.tensorboard)
        self._note_untrained_context()
        self.train_view = self._view("train", training=True)
        self.val_view = self._view("val", training=False)
        cfg = run.train
        self.batches = EpochBatches(
            len(self.train_view),
            self.batch_size,
            cfg.seed,
            world_size=self.cluster.world_size,
            rank=self.cluster.rank,
            grad_accum=cfg.grad_accum,
        )
        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        self.schedule = LRSchedule(self.optimizer, cfg)
        self.position = Position()
        if fresh:
            self._write_run_config()
        elif checkpoint is not None:
            self._restore(checkpoint)
        else:
            self.report.say(f"{run_dir}: no checkpoint yet (stopped before its first one); starting the run again from step 0")
            self._forget_logged_steps()
        self.net = self._wrap(self.model)
        self.started = time.monotonic()

    # ----- setup ---------------------------------------------------------------------------------

    def _device(self, name: str) -> torch.device:
        device = resolve_device(name)
        if device.type == "cuda" and self.cluster.distributed:
            device = torch.device("cuda", self.cluster.local_rank)
            torch.cuda.set_device(device)
        return device

    def _build_model(self, run: RunConfig, *, from_init: bool) -> torch.nn.Module:
        """A new model, or the ``init`` checkpoint's (its config replaces the
        run's); a run resumed from a checkpoint rebuilds from its config and
        loads its weights afterwards."""
        from midilm.model import build_model

        torch.manual_seed(run.train.seed)
        if run.train.lora and not run.init:
            raise ConfigError("--lora trains adapters on a trained model: name it with --init (a run, model folder or hub id)")
        if run.init and (from_init or run.train.lora):  # a LoRA run rebuilds its frozen base from init on resume too
            loaded = load_for_inference(run.init)
            init_tokenizer = loaded.run.data.tokenizer
            if init_tokenizer and init_tokenizer != run.data.tokenizer:
                raise ConfigError(f"{run.init}: trained on tokens made with other tokenizer options than the store {run.data.store}")
            if loaded.source.name == ADAPTER_WEIGHTS_FILE:
                raise ConfigError(f"{run.init}: applies a LoRA adapter; fold it in first (midilm export --merge) to train on it")
            self._record_init(run, loaded)
            run.model = loaded.run.model
            model = loaded.model
        else:
            model = build_model(run.model)
        if run.train.anticipation and run.model.vocab_size < anticipation.VOCAB_SIZE and run.init and not run.train.lora:
            from midilm.model.build import with_vocabulary

            model = with_vocabulary(model, anticipation.VOCAB_SIZE)  # the init model learns the anticipation ids
            run.model = model.config
            if self.cluster.is_main:
                print(f"{run.init}: vocabulary grown to {anticipation.VOCAB_SIZE} ids for --anticipation (new rows start untrained)")
        if run.train.anticipation and run.model.vocab_size < anticipation.VOCAB_SIZE:
            raise ConfigError(
                f"--anticipation needs a model with the anticipation ids ({anticipation.VOCAB_SIZE} classes); "
                f"{run.init or 'this model'} has {run.model.vocab_size}: train from scratch, or fine-tune it fully (LoRA cannot train new ids)"
            )
        if run.train.freeze_embeddings:
            for module in model.modules():
                if isinstance(module, torch.nn.Embedding):
                    module.weight.requires_grad_(False)
        if self.cluster.is_main:
            print(f"model: {run.model.arch}, {sum(p.numel() for p in model.parameters()):,} parameters", flush=True)
        return model.to(self.device).train()

    @staticmethod
    def _record_init(run: RunConfig, loaded: Any) -> None:
        """Name the init model so that it can be found from anywhere (absolute path or hub id)
        and record its content; a resumed LoRA run refuses a base whose content changed."""
        from midilm.hub.files import file_sha256
        from midilm.hub.sources import resolve

        sha256 = file_sha256(loaded.source)
        if run.init_sha256 and sha256 != run.init_sha256:
            raise ConfigError(
                f"{run.init}: its weights changed since this run started (sha256 {sha256[:12]}..., recorded {run.init_sha256[:12]}...); "
                "the adapters of a LoRA run only fit the base they were trained on"
            )
        run.init, run.init_sha256 = resolve(run.init).name, sha256

    def _add_adapters(self, train: TrainConfig) -> None:
        """Freeze the model and wrap its attention and MLP projections (or ``--lora-targets``) with LoRA adapters."""
        from midilm.model.lora import add_adapters

        targets = [name.strip() for name in train.lora_targets.split(",") if name.strip()] or self.model.lora_targets
        wrapped = add_adapters(self.model, train.lora, train.lora_alpha, targets, train.lora_dropout)
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        if self.cluster.is_main:
            total = sum(p.numel() for p in self.model.parameters())
            print(
                f"LoRA rank {train.lora} on {len(wrapped)} layers: {trainable:,} trainable parameters ({trainable / total:.2%})", flush=True
            )

    def _note_untrained_context(self) -> None:
        window, context = self.run.train.window_events, self.run.model.context_events
        if window < context:
            self.report.say(
                f"note: windows of {window} events never train the last {context - window} of the model's {context} events of context, "
                f"which generation uses before its window slides; leave --window-events at its default to match them"
            )

    def _view(self, split: str, *, training: bool) -> Any:
        cfg = self.run.train
        if not len(self.store.split(split)):
            raise ConfigError(f"{self.store.path}: the {split} split is empty; prepare more files or change --split-ratios")
        options: dict[str, Any] = {"seed": cfg.seed, "anticipation": round(cfg.anticipation * STEPS_PER_BEAT)}
        if training:
            options.update(random_offset=cfg.random_offset, augment=cfg.augment)
        return self.model.window_view(self.store, split, cfg.window_events, cfg.stride_events, **options)

    def _wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        net = model
        if self.run.train.compile:
            net = torch.compile(net)
        if self.cluster.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            net = torch.nn.parallel.DistributedDataParallel(net, device_ids=ids)
        return net

    def _write_run_config(self) -> None:
        if self.cluster.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.run_dir / (CONFIG_FILE + ".tmp")
            tmp.write_text(self.run.to_json())
            tmp.replace(self.run_dir / CONFIG_FILE)

    def _restore(self, folder: Path) -> None:
        if self.run.train.lora:
            adapters.load_into_wrapped(self.model, adapters.read_adapter(folder))
        else:
            load_weights(self.model, folder / "model.safetensors")
        state = read_state(folder)
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.position = Position(**state["position"])
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self._forget_logged_steps()
        self.report.say(f"resuming {self.run_dir} at step {self.position.step} (epoch {self.position.epoch + 1})")

    def _forget_logged_steps(self) -> None:
        """Drop metric rows past the restored step: those steps are replayed."""
        if self.cluster.is_main:
            self.report.log.truncate_after(self.position.step)

    # ----- time and checkpoints ------------------------------------------------------------------

    def train_seconds(self) -> float:
        """Training time of the whole run, earlier sessions included."""
        return self.position.train_seconds + (time.monotonic() - self.started)

    def rng_state(self) -> dict[str, torch.Tensor]:
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def set_rng_state(self, rng: dict[str, torch.Tensor]) -> None:
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng:
            torch.cuda.set_rng_state(rng["cuda"], self.device)

    def save_last(self) -> None:
        """The resumable checkpoint: weights, optimizer, schedule, position and RNG."""
        if not self.cluster.is_main:
            return
        position = {**vars(self.position), "train_seconds": self.train_seconds()}
        state = {
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "position": position,
            "rng": self.rng_state(),
        }
        meta = {"step": self.position.step, "epoch": self.position.epoch, "best_val_loss": self.position.best_val_loss}
        self._save(self.run_dir / "last", meta, state)

    def save_best(self, metrics: dict[str, Any]) -> None:
        """The weights of the best evaluation so far (no training state)."""
        if self.cluster.is_main:
            meta = {"step": self.position.step, "epoch": self.position.epoch, **{f"val_{k}": v for k, v in metrics.items()}}
            self._save(self.run_dir / "best", meta, None)

    def _save(self, folder: Path, meta: dict[str, Any], state: dict[str, Any] | None) -> None:
        """The whole model, or for a LoRA run its adapters alone."""
        save = adapters.save_adapter_checkpoint if self.run.train.lora else save_checkpoint
        save(folder, self.model, self.run, meta, state)
