"""Which windows each process reads at each step, as a pure function of
(seed, epoch, step): so a run resumes at the exact batch it stopped at, and a
run on N processes reads the same global batches as a run on one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from midilm.errors import ConfigError


class EpochBatches:
    """Global batches of a shuffled epoch, split over ranks and accumulation steps.

    Epoch ``e`` visits a permutation drawn from ``seed + e``; the last batch is
    filled up from the start of the permutation, so every global batch is full
    and splits evenly whatever the number of processes.
    """

    def __init__(self, n_items: int, global_batch: int, seed: int, *, world_size: int = 1, rank: int = 0, grad_accum: int = 1) -> None:
        if n_items <= 0:
            raise ConfigError("no training windows: the train split is empty")
        parts = world_size * grad_accum
        if global_batch % parts:
            raise ConfigError(f"batch size {global_batch} does not split over {world_size} process(es) x {grad_accum} accumulation step(s)")
        self.n_items, self.global_batch, self.seed = n_items, global_batch, seed
        self.world_size, self.rank, self.grad_accum = world_size, rank, grad_accum
        self.micro = global_batch // parts

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.n_items / self.global_batch)

    def order(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n_items, generator=generator)

    def micro_batches(self, epoch: int, first_step: int = 0) -> Iterator[list[int]]:
        """This rank's micro-batches from ``first_step`` to the end of the epoch,
        ``grad_accum`` of them per optimizer step."""
        order = self.order(epoch)
        wrapped = torch.cat([order, order[: self.global_batch]])
        for step in range(first_step, self.steps_per_epoch):
            batch = wrapped[step * self.global_batch : (step + 1) * self.global_batch]
            mine = batch.view(self.world_size, self.grad_accum, self.micro)[self.rank]
            for micro in mine:
                yield micro.tolist()


def eval_batches(n_items: int, batch_size: int, *, world_size: int = 1, rank: int = 0, limit: int = 0) -> list[list[int]]:
    """Val windows in order, each once, dealt to ranks round-robin; ``limit``
    caps the number of global batches, taking windows spread evenly over the
    split (not its first files), so a bounded evaluation samples all of it."""
    items = list(range(n_items))
    wanted = limit * batch_size * world_size
    if limit and wanted < n_items:
        items = sorted({int(i) for i in torch.linspace(0, n_items - 1, wanted).round().tolist()})
    share = items[rank::world_size]
    return [share[i : i + batch_size] for i in range(0, len(share), batch_size)]
