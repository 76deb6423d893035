"""What a run shows and leaves for people, beside the loop: the progress bars,
``metrics.jsonl``, ``curves.png``, TensorBoard and the messages. Rank 0 alone reports."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from midilm.train.runlog import CURVES_FILE, MetricsLog, TensorBoardLog, plot_curves


class _TrainWindow:
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


class Reporter:
    """Progress, metric rows and messages of one run."""

    def __init__(self, run_dir: Path, arch: str, *, is_main: bool, tensorboard: bool) -> None:
        self.run_dir, self.arch, self.is_main = run_dir, arch, is_main
        self.log = MetricsLog(run_dir)
        self.tensorboard = TensorBoardLog(run_dir) if tensorboard and is_main else None
        self.window = _TrainWindow()
        self.bar: Any = None

    def say(self, text: str) -> None:
        if not self.is_main:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def start(self, total_steps: int, step: int) -> None:
        from tqdm.auto import tqdm

        self.window.reset()
        self.bar = tqdm(total=total_steps or None, initial=step, unit="step", desc="train", disable=not self.is_main, dynamic_ncols=True)

    def train_row(self, step: int, epoch: float, lr: float, elapsed_s: float) -> dict[str, Any]:
        """The row of a logged step: train loss and throughput since the last one."""
        row = {
            "step": step,
            "epoch": round(epoch, 4),
            "train_loss": self.window.loss(),
            "lr": lr,
            "tokens_per_s": self.window.tokens_per_s(),
            "elapsed_s": round(elapsed_s, 2),
        }
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{row['train_loss']:.3f}", tok_s=f"{row['tokens_per_s']:.0f}", refresh=False)
            self.bar.update(step - self.bar.n)
        self.window.reset()
        return row

    def eval_bar(self, n_batches: int, covered: str) -> Any:
        """A progress bar for an evaluation of ``n_batches`` that says what it covers."""
        from tqdm.auto import tqdm

        return tqdm(total=n_batches, unit="batch", desc=f"val ({covered})", leave=False, disable=not self.is_main, dynamic_ncols=True)

    def evaluated(self, step: int, metrics: dict[str, float], improved: bool) -> None:
        self.say(
            f"step {step}: val loss {metrics['loss']:.4f} (ppl {metrics['ppl']:.2f}, {metrics['nats_per_event']:.3f} nats/event){' *' if improved else ''}"
        )

    def write(self, row: dict[str, Any]) -> None:
        if not self.is_main:
            return
        self.log.append(row)
        if self.tensorboard is not None:
            self.tensorboard.log(row)
        if "val_loss" in row:
            plot_curves(self.log.rows(), self.run_dir / CURVES_FILE, title=f"{self.arch} ({self.run_dir.name})")

    def amend(self, step: int, values: dict[str, Any]) -> None:
        """Add values to the row of ``step`` (an evaluation finished after a resume)."""
        if self.is_main:
            self.log.amend(step, values)
            plot_curves(self.log.rows(), self.run_dir / CURVES_FILE, title=f"{self.arch} ({self.run_dir.name})")

    def finish(self, reason: str, step: int, best_val_loss: float, best_step: int, evaluated: bool) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.tensorboard is not None:
            self.tensorboard.close()
        if reason == "interrupted":
            self.say(f"interrupted at step {step}; continue with: midilm train --resume {self.run_dir}")
        elif evaluated:
            self.say(
                f"done: {reason} at step {step}; best val loss {best_val_loss:.4f} at step {best_step}\n"
                f"  checkpoints: {self.run_dir / 'best'} and {self.run_dir / 'last'}\n  curves: {self.run_dir / CURVES_FILE}"
            )
