"""The training loop: start a run, or resume one exactly where it stopped.

A step is one optimizer update over a global batch (summed over processes and
accumulation steps). The loss is the total cross-entropy of the global batch's
non-PAD targets divided by their count, computed the same way on 1 or N
processes, so a DDP run follows the same trajectory as a single process. All
randomness (weights, data order, dropout, augmentation) flows from the run's
seed and is saved in every ``last`` checkpoint with the data position.

:func:`fit` reads top to bottom: step, maybe evaluate, maybe checkpoint, until
one stop reason. Setup and checkpoints live in :mod:`midilm.train.session`,
reporting in :mod:`midilm.train.report`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from midilm import anticipation, vocab
from midilm.errors import ConfigError
from midilm.runtime import autocast
from midilm.train import distributed
from midilm.train.batches import eval_batches
from midilm.train.checkpoint import WEIGHTS_FILE, existing_checkpoint
from midilm.train.config import FINE_TUNE_LR, LORA_LR, DataRef, RunConfig, TrainConfig
from midilm.train.interrupt import Interrupt, StepAborted
from midilm.train.metrics import count_targets, evaluate_view, summed_loss
from midilm.train.session import CONFIG_FILE, TrainingSession
from midilm.train.weights_fit import check_weights_fit

LIMITS = ("max_steps", "max_epochs", "max_minutes")
"""Stop reasons that end a run with a final evaluation."""


@dataclass
class TrainResult:
    """How a run ended."""

    run_dir: Path
    step: int
    best_val_loss: float
    last_metrics: dict[str, Any]
    stop_reason: str


def open_store(path: str | Path) -> Any:
    """The store at ``path``, verified: every file's token rows match their
    checksums, so no run trains on a damaged or zero-filled token file."""
    from midilm.data import TokenStore

    store = TokenStore(path)
    store.verify()
    return store


def start_run(
    data: str | Path, out: str | Path, model_config: Any, train_config: TrainConfig, init: str | Path | None = None
) -> TrainResult:
    """Train a new model (or fine-tune ``init``) on the store at ``data``, writing the run to ``out``."""
    out = Path(out)
    if (out / CONFIG_FILE).exists():
        raise ConfigError(f"{out}: already holds a run; continue it with --resume {out} or choose another --out")
    store = open_store(data)
    train_config.validate()
    vocab_spec = vocab.spec()
    if train_config.anticipation:  # the model also reads anticipated rows: six more ids, recorded with the vocabulary
        vocab_spec["anticipation"] = anticipation.spec()
        if not init:
            model_config = replace(model_config, vocab_size=max(model_config.vocab_size, anticipation.VOCAB_SIZE))
    run = RunConfig(
        model=model_config,
        train=train_config,
        data=DataRef(store=str(Path(data).resolve()), identity=store.identity, tokenizer=store.tokenizer_spec),
        vocab=vocab_spec,
        init=str(init or ""),
    )
    return fit(TrainingSession(out, run, store, fresh=True))


def resume_run(run_dir: str | Path, max_steps: int | None = None, max_minutes: float | None = None) -> TrainResult:
    """Continue a run from its ``last`` checkpoint with every recorded setting;
    only the stopping limits may be extended."""
    run_dir = Path(run_dir)
    run = RunConfig.load(run_dir / CONFIG_FILE)
    changes = {k: v for k, v in (("max_steps", max_steps), ("max_minutes", max_minutes)) if v is not None}
    if changes:
        run = replace(run, train=replace(run.train, **changes))
    last = existing_checkpoint(run_dir / "last")
    if last is not None and not run.train.lora:  # a LoRA checkpoint holds the adapter alone, checked when it loads
        check_weights_fit(last / WEIGHTS_FILE, run.model)  # before the session builds the model config.json describes
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
    return fit(TrainingSession(run_dir, run, store, fresh=False))


def fit(s: TrainingSession) -> TrainResult:
    """Train until one stop reason: the limits, early stopping or Ctrl-C."""
    cfg, pos, report = s.run.train, s.position, s.report
    metrics: dict[str, Any] = {}
    evaluated = False
    with Interrupt(can_abort=not s.cluster.distributed) as interrupt:
        if pos.pending_eval:  # the previous session was stopped inside an evaluation that the run owes
            finished = evaluate(s, interrupt, scheduled=pos.pending_eval == "scheduled")
            if finished is None:
                return _end(s, "interrupted", metrics, evaluated)
            metrics, evaluated = finished, True
            report.amend(pos.step, {f"val_{k}": v for k, v in metrics.items()})
            s.save_last()
        reason = pos.stop_reason or stop_reason(s, interrupt)
        if reason and reason != "interrupted":
            report.say(
                f"{s.run_dir}: nothing to do: the run already ended at step {pos.step} ({reason}); pass a larger --max-steps to extend it"
            )
            return _end(s, reason, metrics, evaluated)
        batches = micro_batches(s)
        report.start(cfg.max_steps or s.batches.steps_per_epoch * cfg.max_epochs, pos.step)
        while not reason:
            step_lr = s.optimizer.param_groups[0]["lr"]  # the rate this step uses
            try:
                report.window.add(*train_step(s, next(batches), interrupt))
            except StepAborted:
                reason = "interrupted"
                s.save_last()
                break
            end_of_epoch = pos.advance(s.batches.steps_per_epoch)
            reason = stop_reason(s, interrupt)
            scheduled = bool(cfg.eval_every and pos.step % cfg.eval_every == 0) or (not cfg.eval_every and end_of_epoch)
            final = reason in LIMITS
            row = None
            if scheduled or final or pos.step % cfg.log_every == 0:
                row = report.train_row(pos.step, pos.epoch + pos.step_in_epoch / s.batches.steps_per_epoch, step_lr, s.train_seconds())
            if scheduled or final:
                pos.pending_eval = "scheduled" if scheduled else "final"
                finished = evaluate(s, interrupt, scheduled=scheduled)
                if finished is None:
                    reason = "interrupted"
                else:
                    metrics, evaluated = finished, True
                    row.update({f"val_{k}": v for k, v in metrics.items()}, best=pos.best_step == pos.step)
                    reason = reason or pos.stop_reason
            if row is not None:
                report.write(row)
            if scheduled or final or reason or (cfg.checkpoint_every and pos.step % cfg.checkpoint_every == 0):
                s.save_last()
    return _end(s, reason, metrics, evaluated)


def stop_reason(s: TrainingSession, interrupt: Interrupt) -> str:
    """Why to stop now ("" = go on), agreed by every rank."""
    cfg, pos = s.run.train, s.position
    if cfg.max_steps and pos.step >= cfg.max_steps:
        return "max_steps"
    if pos.epoch >= cfg.max_epochs:
        return "max_epochs"
    budget_spent = bool(cfg.max_minutes) and s.train_seconds() >= cfg.max_minutes * 60
    interrupted, budget_spent = distributed.broadcast_flags([interrupt.requested, budget_spent], s.device)
    return "interrupted" if interrupted else "max_minutes" if budget_spent else ""


def micro_batches(s: TrainingSession) -> Iterator[list[tuple[torch.Tensor, torch.Tensor]]]:
    """The ``grad_accum`` micro-batches of each step from the run's position on, epoch after epoch."""
    cfg, pos = s.run.train, s.position
    while True:
        epoch, first_step = pos.epoch, pos.step_in_epoch
        s.train_view.set_epoch(epoch)
        indices = list(s.batches.micro_batches(epoch, first_step))
        generator = torch.Generator().manual_seed(cfg.seed + epoch)
        loader = iter(DataLoader(s.train_view, batch_sampler=indices, num_workers=cfg.num_workers, generator=generator))
        for _ in range(first_step, s.batches.steps_per_epoch):
            yield [next(loader) for _ in range(cfg.grad_accum)]


def train_step(s: TrainingSession, micro: list[tuple[torch.Tensor, torch.Tensor]], interrupt: Interrupt) -> tuple[float, int, int]:
    """One optimizer update; returns summed nats, counted targets and input tokens (all ranks).

    Ctrl-C during the forward and backward passes drops them: gradients are
    cleared and the random state is put back, so the saved state is the one
    before this step.
    """
    batches = [(x.to(s.device, non_blocking=True), y.to(s.device, non_blocking=True)) for x, y in micro]
    counts = torch.stack([count_targets(y) for _, y in batches]).sum().to(torch.float64)
    total = distributed.all_reduce_sum(counts.clone()).clamp_min(1)
    nats = torch.zeros((), dtype=torch.float64, device=s.device)
    rng_before = s.rng_state() if interrupt.can_abort else None
    try:
        with interrupt.abortable():
            for i, (inputs, targets) in enumerate(batches):
                last = i == len(batches) - 1
                sync = contextlib.nullcontext() if last or not s.cluster.distributed else s.net.no_sync()
                with sync, autocast(s.device, s.amp_dtype):
                    logits = s.net(inputs, targets)  # every architecture: logits aligned with the targets
                    loss_sum = summed_loss(logits, targets)
                    (loss_sum * (s.cluster.world_size / total)).backward()
                nats += loss_sum.detach().double()
    except StepAborted:
        s.optimizer.zero_grad(set_to_none=True)
        if rng_before is not None:
            s.set_rng_state(rng_before)
        raise
    if s.run.train.grad_clip:
        torch.nn.utils.clip_grad_norm_(s.model.parameters(), s.run.train.grad_clip)
    s.optimizer.step()
    s.optimizer.zero_grad(set_to_none=True)
    s.schedule.after_step()
    distributed.all_reduce_sum(nats)
    n_inputs = sum(x.numel() for x, _ in batches) * s.cluster.world_size
    return nats.item(), int(total.item()), n_inputs


def evaluate(s: TrainingSession, interrupt: Interrupt, *, scheduled: bool) -> dict[str, Any] | None:
    """Metrics on (a bounded share of) the val split, reduced over all processes;
    keeps the best weights. None when Ctrl-C stopped it.

    Only scheduled evaluations drive the plateau schedule and early stopping:
    the extra one at a run's last step must not, or a run stopped early and
    resumed would follow another learning-rate path than one that never stopped.
    """
    cfg, pos = s.run.train, s.position
    metrics = val_metrics(s, interrupt)
    if metrics is None:
        return None
    improved = metrics["loss"] < pos.best_val_loss
    if improved:
        pos.best_val_loss, pos.best_step = metrics["loss"], pos.step
        s.save_best(metrics)
    if scheduled:
        s.schedule.after_eval(metrics["loss"])
        if metrics["loss"] < pos.scheduled_best:
            pos.scheduled_best, pos.evals_since_best = metrics["loss"], 0
        else:
            pos.evals_since_best += 1
            if cfg.early_stop_patience and pos.evals_since_best >= cfg.early_stop_patience:
                pos.stop_reason = "early_stopping"
    pos.pending_eval = ""
    s.report.evaluated(pos.step, metrics, improved)
    return metrics


def val_metrics(s: TrainingSession, interrupt: Interrupt) -> dict[str, float] | None:
    """Loss and accuracy on the val windows ``eval_batches`` asks for, with a
    progress bar that says what share of the split they are; None on Ctrl-C."""
    per_rank = max(1, s.batch_size // s.cluster.world_size)
    limit = s.run.train.eval_batches
    indices = eval_batches(len(s.val_view), per_rank, world_size=s.cluster.world_size, rank=s.cluster.rank, limit=limit)
    windows = sum(len(b) for b in indices) * s.cluster.world_size
    covered = "all windows" if windows >= len(s.val_view) else f"{windows} of {len(s.val_view)} windows"
    try:
        with interrupt.abortable(), s.report.eval_bar(len(indices), covered) as bar:
            # the bare model: DDP's forward would expect a backward to follow
            sums = evaluate_view(s.model, s.val_view, indices, s.device, s.amp_dtype, s.run.train.num_workers, on_batch=bar.update)
    except StepAborted:
        return None
    distributed.all_reduce_sum(sums.sums)
    return sums.result()


def _end(s: TrainingSession, reason: str, metrics: dict[str, Any], evaluated: bool) -> TrainResult:
    pos = s.position
    s.report.finish(reason, pos.step, pos.best_val_loss, pos.best_step, evaluated)
    return TrainResult(s.run_dir, pos.step, pos.best_val_loss, metrics, reason)


def fine_tune_lr(train_config: TrainConfig, lr_given: bool) -> TrainConfig:
    """The fine-tuning learning rate (lower, or for LoRA adapters higher), unless the user chose one."""
    return train_config if lr_given else replace(train_config, lr=LORA_LR if train_config.lora else FINE_TUNE_LR)
