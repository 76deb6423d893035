"""The training loop: start a run, or resume one exactly where it stopped.

A step is one optimizer update over a global batch (summed over processes and
accumulation steps). The loss is the total cross-entropy of the global batch's
non-PAD targets divided by their count, computed the same way on 1 or N
processes, so a DDP run follows the same trajectory as a single process. All
randomness (weights, data order, dropout, augmentation) flows from the run's
seed and is saved in every ``last`` checkpoint with the data position.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from midilm import vocab
from midilm.errors import ConfigError
from midilm.runtime import autocast, autocast_dtype, resolve_device
from midilm.train import distributed
from midilm.train.batches import EpochBatches, eval_batches
from midilm.train.checkpoint import existing_checkpoint, load_for_inference, load_weights, read_state, save_checkpoint
from midilm.train.config import FINE_TUNE_LR, DataRef, RunConfig, TrainConfig
from midilm.train.metrics import count_targets, evaluate_view, summed_loss
from midilm.train.runlog import CURVES_FILE, MetricsLog, TensorBoardLog, plot_curves
from midilm.train.schedule import LRSchedule

CONFIG_FILE = "config.json"


@dataclass
class TrainResult:
    """How a run ended."""

    run_dir: Path
    step: int
    best_val_loss: float
    last_metrics: dict[str, Any]
    stop_reason: str


@dataclass
class _Position:
    """Where the loop is: resumable state besides weights and optimizer."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    best_val_loss: float = float("inf")
    best_step: int = 0
    scheduled_best: float = float("inf")
    evals_since_best: int = 0
    stop_reason: str = ""
    train_seconds: float = 0.0


class _Window:
    """Train loss and throughput since the last logged step."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.nats, self.targets, self.inputs, self.start = 0.0, 0, 0, time.monotonic()

    def add(self, nats: float, targets: int, inputs: int) -> None:
        self.nats, self.targets, self.inputs = self.nats + nats, self.targets + targets, self.inputs + inputs

    def loss(self) -> float:
        return self.nats / max(self.targets, 1)

    def tokens_per_s(self) -> float:
        return self.inputs / max(time.monotonic() - self.start, 1e-9)


class _DeferredInterrupt:
    """Turn the first Ctrl-C into a request to stop after the current step (so
    the saved state is consistent); a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this step (Ctrl-C again to abort without saving)", file=sys.stderr, flush=True)

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def default_batch_size(device: torch.device) -> int:
    """The notebook's choice: 32 windows on an accelerator, 16 on the CPU."""
    return 16 if device.type == "cpu" else 32


def open_store(path: str | Path):
    from midilm.data import TokenStore

    return TokenStore(path)


def start_run(
    data: str | Path, out: str | Path, model_config: Any, train_config: TrainConfig, init: str | Path | None = None
) -> TrainResult:
    """Train a new model (or fine-tune ``init``) on the store at ``data``, writing the run to ``out``."""
    out = Path(out)
    if (out / CONFIG_FILE).exists():
        raise ConfigError(f"{out}: already holds a run; continue it with --resume {out} or choose another --out")
    store = open_store(data)
    train_config.validate()
    run = RunConfig(
        model=model_config,
        train=train_config,
        data=DataRef(store=str(Path(data).resolve()), identity=store.identity, tokenizer=store.tokenizer_spec),
        vocab=vocab.spec(),
        init=str(init or ""),
    )
    return Trainer(out, run, store, fresh=True).fit()


def resume_run(run_dir: str | Path, max_steps: int | None = None, max_minutes: float | None = None) -> TrainResult:
    """Continue a run from its ``last`` checkpoint with every recorded setting;
    only the stopping limits may be extended."""
    run_dir = Path(run_dir)
    run = RunConfig.load(run_dir / CONFIG_FILE)
    changes = {k: v for k, v in (("max_steps", max_steps), ("max_minutes", max_minutes)) if v is not None}
    if changes:
        run = replace(run, train=replace(run.train, **changes))
    store = open_store(run.data.store)
    if store.tokenizer_spec != run.data.tokenizer:
        raise ConfigError(
            f"{run.data.store}: the store was rebuilt with other tokenizer options than this run used; resume needs the same tokens"
        )
    if store.identity != run.data.identity:
        raise ConfigError(
            f"{run.data.store}: the store changed since this run started (identity {store.identity}, run recorded {run.data.identity}); "
            "an exact resume needs the same data: start a new run, or fine-tune with --init"
        )
    return Trainer(run_dir, run, store, fresh=False).fit()


class Trainer:
    """One process's share of a run; rank 0 alone writes files."""

    def __init__(self, run_dir: Path, run: RunConfig, store: Any, *, fresh: bool) -> None:
        self.run_dir, self.run, self.store = run_dir, run, store
        self.cluster = distributed.launched_cluster()
        cfg = run.train
        device = resolve_device(cfg.device)
        if device.type == "cuda" and self.cluster.distributed:
            device = torch.device("cuda", self.cluster.local_rank)
            torch.cuda.set_device(device)
        self.device = device
        distributed.init_process_group(self.cluster, device)
        self.amp_dtype = autocast_dtype(device, cfg.precision)
        self.batch_size = cfg.batch_size or default_batch_size(device)

        self.model = self._build_model(fresh)
        self.input_kind = self.model.input_kind
        self._check_context()
        self.train_view = self._view("train", training=True)
        self.val_view = self._view("val", training=False)
        self.batches = EpochBatches(
            len(self.train_view),
            self.batch_size,
            cfg.seed,
            world_size=self.cluster.world_size,
            rank=self.cluster.rank,
            grad_accum=cfg.grad_accum,
        )
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.schedule = LRSchedule(self.optimizer, cfg)
        self.position = _Position()
        self.log = MetricsLog(run_dir)
        if fresh:
            self._write_run_config()
        else:
            self._restore()
        self.net = self._wrap(self.model)
        self.tensorboard = TensorBoardLog(run_dir) if cfg.tensorboard and self.cluster.is_main else None

    # ----- setup ---------------------------------------------------------------------------------

    def _build_model(self, fresh: bool) -> torch.nn.Module:
        """A new model, or on a fresh fine-tuning run the ``init`` checkpoint's
        model (its config replaces the run's); a resumed run rebuilds from its config."""
        from midilm.model import build_model

        torch.manual_seed(self.run.train.seed)
        if self.run.init and fresh:
            loaded = load_for_inference(self.run.init)
            init_tokenizer = loaded.run.data.tokenizer
            if init_tokenizer and init_tokenizer != self.run.data.tokenizer:
                raise ConfigError(
                    f"{self.run.init}: trained on tokens made with other tokenizer options than the store {self.run.data.store}"
                )
            self.run.model = loaded.run.model
            model = loaded.model
        else:
            model = build_model(self.run.model)
        if self.run.train.freeze_embeddings:
            for module in model.modules():
                if isinstance(module, torch.nn.Embedding):
                    module.weight.requires_grad_(False)
        if self.cluster.is_main:
            n = sum(p.numel() for p in model.parameters())
            print(f"model: {self.run.model.arch}, {n:,} parameters", flush=True)
        return model.to(self.device).train()

    def _check_context(self) -> None:
        limit = self.run.model.max_seq_len
        unit = "events" if self.input_kind == "events" else "tokens"
        if self.run.train.seq_len > limit:
            raise ConfigError(
                f"seq_len {self.run.train.seq_len} {unit} does not fit the model's context of {limit} {unit} (raise the model's max_seq_len or lower --seq-len)"
            )
        if self.run.train.seq_len < limit and self.cluster.is_main:
            print(
                f"note: windows of {self.run.train.seq_len} {unit} never train positions {self.run.train.seq_len}..{limit - 1} of the model's context, "
                f"which generation uses before its window slides; pass --max-seq-len {self.run.train.seq_len} to match them",
                flush=True,
            )

    def _view(self, split: str, *, training: bool):
        from midilm.data import EventWindows, TokenWindows

        cfg = self.run.train
        if not len(self.store.split(split)):
            raise ConfigError(f"{self.store.path}: the {split} split is empty; prepare more files or change --split-ratios")
        common: dict[str, Any] = {"stride": cfg.stride, "seed": cfg.seed}
        if training:
            common.update(random_offset=cfg.random_offset, augment=cfg.augment)
        if self.input_kind == "events":
            return EventWindows(self.store, split, n_events=cfg.seq_len, **common)
        return TokenWindows(self.store, split, seq_len=cfg.seq_len, **common)

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

    def _restore(self) -> None:
        folder = existing_checkpoint(self.run_dir / "last")
        if folder is None:
            raise ConfigError(
                f"{self.run_dir}: no 'last' checkpoint to resume from (the run stopped before its first checkpoint; start it again)"
            )
        load_weights(self.model, folder / "model.safetensors")
        state = read_state(folder)
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.position = _Position(**state["position"])
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        if self.cluster.is_main:
            self.log.truncate_after(self.position.step)
            print(f"resuming {self.run_dir} at step {self.position.step} (epoch {self.position.epoch + 1})", flush=True)

    # ----- checkpoints ---------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "position": vars(self.position).copy(),
            "rng": rng,
        }

    def _save(self, name: str, metrics: dict[str, Any]) -> None:
        if not self.cluster.is_main:
            return
        meta = {"step": self.position.step, "epoch": self.position.epoch, **metrics}
        state = self._state() if name == "last" else None
        save_checkpoint(self.run_dir / name, self.model, self.run, meta, state)

    # ----- the loop ------------------------------------------------------------------------------

    def _limits_reached(self, started: float, interrupt: _DeferredInterrupt | None = None) -> str:
        """Why to stop now, agreed by every rank ("" = go on)."""
        cfg, pos = self.run.train, self.position
        if cfg.max_steps and pos.step >= cfg.max_steps:
            return "max_steps"
        if pos.epoch >= cfg.max_epochs:
            return "max_epochs"
        budget_spent = bool(cfg.max_minutes) and pos.train_seconds + (time.monotonic() - started) >= cfg.max_minutes * 60
        interrupted = interrupt is not None and interrupt.requested
        flags = distributed.broadcast_flags([interrupted, budget_spent], self.device)
        return "interrupted" if flags[0] else "max_minutes" if flags[1] else ""

    def _loader(self, indices: Any, view: Any) -> DataLoader:
        generator = torch.Generator().manual_seed(self.run.train.seed + self.position.epoch)
        return DataLoader(view, batch_sampler=indices, num_workers=self.run.train.num_workers, generator=generator)

    def fit(self) -> TrainResult:
        cfg, pos = self.run.train, self.position
        started = time.monotonic()
        if pos.stop_reason or (reason := self._limits_reached(started)):
            if self.cluster.is_main:
                print(
                    f"{self.run_dir}: nothing to do: the run already ended at step {pos.step} ({pos.stop_reason or reason}); "
                    "pass a larger --max-steps to extend it",
                    flush=True,
                )
            return self._result({}, pos.stop_reason or reason)
        progress = self._progress()
        window = _Window()
        last_metrics: dict[str, Any] = {}
        with _DeferredInterrupt() as interrupt:
            while not (reason := pos.stop_reason or self._limits_reached(started, interrupt)):
                self.train_view.set_epoch(pos.epoch)
                loader = iter(self._loader(list(self.batches.micro_batches(pos.epoch, pos.step_in_epoch)), self.train_view))
                end_of_epoch = False
                while not reason and not end_of_epoch:
                    window.add(*self._step([next(loader) for _ in range(cfg.grad_accum)]))
                    pos.step += 1
                    pos.step_in_epoch += 1
                    end_of_epoch = pos.step_in_epoch == self.batches.steps_per_epoch
                    if end_of_epoch:
                        pos.epoch, pos.step_in_epoch = pos.epoch + 1, 0
                    reason = self._limits_reached(started, interrupt)
                    scheduled = bool(cfg.eval_every and pos.step % cfg.eval_every == 0) or (not cfg.eval_every and end_of_epoch)
                    evaluate = scheduled or reason not in ("", "interrupted")
                    if evaluate or pos.step % cfg.log_every == 0:
                        row = self._log_row(window, started, progress)
                        if evaluate:
                            last_metrics = self._evaluate_into(row, scheduled)
                            reason = reason or pos.stop_reason
                        self._write_row(row)
                    if evaluate or reason or (cfg.checkpoint_every and pos.step % cfg.checkpoint_every == 0):
                        self._save_last(started)
        progress.close()
        if reason == "interrupted" and self.cluster.is_main:
            print(f"interrupted at step {pos.step}; continue with: midilm train --resume {self.run_dir}", flush=True)
        if self.tensorboard is not None:
            self.tensorboard.close()
        return self._result(last_metrics, reason)

    def _step(self, micro: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, int, int]:
        """One optimizer update; returns summed nats, counted targets and input tokens (all ranks)."""
        cfg = self.run.train
        batches = [(x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)) for x, y in micro]
        counts = torch.stack([count_targets(y) for _, y in batches]).sum().to(torch.float64)
        total = distributed.all_reduce_sum(counts.clone()).clamp_min(1)
        nats = torch.zeros((), dtype=torch.float64, device=self.device)
        for i, (inputs, targets) in enumerate(batches):
            last = i == len(batches) - 1
            sync = contextlib.nullcontext() if last or not self.cluster.distributed else self.net.no_sync()
            with sync, autocast(self.device, self.amp_dtype):
                logits = self._forward(inputs, targets)
                loss_sum = summed_loss(logits, targets)
                (loss_sum * (self.cluster.world_size / total)).backward()
            nats += loss_sum.detach().double()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.step_lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.schedule.after_step()
        distributed.all_reduce_sum(nats)
        n_inputs = sum(x.numel() for x, _ in batches) * self.cluster.world_size
        return nats.item(), int(total.item()), n_inputs

    def _forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.net(inputs, targets) if self.input_kind == "events" else self.net(inputs)

    def evaluate(self) -> dict[str, float]:
        """Metrics on the val split, reduced over all processes."""
        per_rank = max(1, self.batch_size // self.cluster.world_size)
        indices = eval_batches(
            len(self.val_view), per_rank, world_size=self.cluster.world_size, rank=self.cluster.rank, limit=self.run.train.eval_batches
        )
        # the bare model: DDP's forward would expect a backward to follow
        sums = evaluate_view(self.model, self.val_view, indices, self.device, self.amp_dtype, self.run.train.num_workers)
        distributed.all_reduce_sum(sums.sums)
        return sums.result()

    def _evaluate_into(self, row: dict[str, Any], scheduled: bool) -> dict[str, Any]:
        """Evaluate and add the metrics to ``row``; keep the best weights.

        Only scheduled evaluations drive the plateau schedule and early
        stopping: the extra one at a run's last step must not, or a run stopped
        early and resumed would follow another learning-rate path than one
        that never stopped.
        """
        cfg, pos = self.run.train, self.position
        metrics = self.evaluate()
        val_loss = metrics["loss"]
        row.update({f"val_{k}": v for k, v in metrics.items()})
        improved = val_loss < pos.best_val_loss
        if improved:
            pos.best_val_loss, pos.best_step = val_loss, pos.step
            self._save("best", {f"val_{k}": v for k, v in metrics.items()})
        if scheduled:
            self.schedule.after_eval(val_loss)
            if val_loss < pos.scheduled_best:
                pos.scheduled_best, pos.evals_since_best = val_loss, 0
            else:
                pos.evals_since_best += 1
                if cfg.early_stop_patience and pos.evals_since_best >= cfg.early_stop_patience:
                    pos.stop_reason = "early_stopping"
        row["best"] = improved
        if self.cluster.is_main:
            self._bar.write(
                f"step {pos.step}: val loss {val_loss:.4f} (ppl {metrics['ppl']:.2f}, {metrics['nats_per_event']:.3f} nats/event){' *' if improved else ''}"
            )
        return metrics

    def _save_last(self, started: float) -> None:
        saved_seconds = self.position.train_seconds
        self.position.train_seconds = saved_seconds + (time.monotonic() - started)
        self._save("last", {"best_val_loss": self.position.best_val_loss})
        self.position.train_seconds = saved_seconds

    # ----- reporting -----------------------------------------------------------------------------

    def _progress(self):
        from tqdm.auto import tqdm

        cfg = self.run.train
        total = cfg.max_steps or self.batches.steps_per_epoch * cfg.max_epochs
        self._bar = tqdm(
            total=total, initial=self.position.step, unit="step", desc="train", disable=not self.cluster.is_main, dynamic_ncols=True
        )
        return self._bar

    def _log_row(self, window: _Window, started: float, progress: Any) -> dict[str, Any]:
        pos = self.position
        row = {
            "step": pos.step,
            "epoch": round(pos.epoch + pos.step_in_epoch / self.batches.steps_per_epoch, 4),
            "train_loss": window.loss(),
            "lr": self.step_lr,  # the rate the last step used
            "tokens_per_s": window.tokens_per_s(),
            "elapsed_s": round(pos.train_seconds + time.monotonic() - started, 2),
        }
        progress.set_postfix(loss=f"{row['train_loss']:.3f}", tok_s=f"{row['tokens_per_s']:.0f}", refresh=False)
        progress.update(pos.step - progress.n)
        window.reset()
        return row

    def _write_row(self, row: dict[str, Any]) -> None:
        if not self.cluster.is_main:
            return
        self.log.append(row)
        if self.tensorboard is not None:
            self.tensorboard.log(row)
        if "val_loss" in row:
            plot_curves(self.log.rows(), self.run_dir / CURVES_FILE, title=f"{self.run.model.arch} ({self.run_dir.name})")

    def _result(self, metrics: dict[str, Any], reason: str) -> TrainResult:
        pos = self.position
        if self.cluster.is_main and reason and metrics:
            print(
                f"done: {reason} at step {pos.step}; best val loss {pos.best_val_loss:.4f} at step {pos.best_step}\n"
                f"  checkpoints: {self.run_dir / 'best'} and {self.run_dir / 'last'}\n  curves: {self.run_dir / CURVES_FILE}",
                flush=True,
            )
        return TrainResult(self.run_dir, pos.step, pos.best_val_loss, metrics, reason)


def fine_tune_lr(train_config: TrainConfig, lr_given: bool) -> TrainConfig:
    """The lower fine-tuning learning rate, unless the user chose one."""
    return train_config if lr_given else replace(train_config, lr=FINE_TUNE_LR)
