"""Learning-rate schedules: the notebook's ReduceLROnPlateau, or warmup + cosine / constant."""

from __future__ import annotations

import math
from typing import Any

import torch

from midilm.train.config import TrainConfig


class LRSchedule:
    """One interface over two kinds of schedule: plateau reacts to evaluations,
    the others follow the step count. Both save and restore their state."""

    def __init__(self, optimizer: torch.optim.Optimizer, config: TrainConfig) -> None:
        self.kind = config.schedule
        if self.kind == "plateau":
            self.scheduler: Any = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="min", factor=config.plateau_factor, patience=config.plateau_patience
            )
        else:
            warmup, total, floor = config.warmup_steps, max(config.max_steps, 1), config.min_lr_ratio
            cosine = self.kind == "cosine"

            def factor(step: int) -> float:
                if step < warmup:
                    return (step + 1) / warmup
                if not cosine:
                    return 1.0
                progress = min(1.0, (step - warmup) / max(1, total - 1 - warmup))  # the last step at the floor
                return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

            self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def after_step(self) -> None:
        if self.kind != "plateau":
            self.scheduler.step()

    def after_eval(self, val_loss: float) -> None:
        if self.kind == "plateau":
            self.scheduler.step(val_loss)

    def state_dict(self) -> dict[str, Any]:
        state = self.scheduler.state_dict()
        state.pop("lr_lambdas", None)  # closures are rebuilt from the config, not pickled
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)
