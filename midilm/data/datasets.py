"""Torch wrappers of the window views, and a deterministic per-rank sampler.

The views themselves are torch-free; these classes only convert items to
``torch.long`` tensors at the batch boundary and deal windows to DDP ranks.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from midilm.data.views import EventWindows, TokenWindows


class WindowDataset(Dataset):
    """A :class:`TokenWindows` or :class:`EventWindows` whose items are
    ``(inputs, targets)`` ``torch.long`` tensors."""

    def __init__(self, view: TokenWindows | EventWindows) -> None:
        self.view = view

    def __len__(self) -> int:
        return len(self.view)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, targets = self.view[i]
        return torch.from_numpy(inputs), torch.from_numpy(targets)

    def set_epoch(self, epoch: int) -> None:
        self.view.set_epoch(epoch)


def rank_indices(n_items: int, *, rank: int, world_size: int, epoch: int = 0, seed: int = 0, shuffle: bool = True) -> np.ndarray:
    """This rank's items of one epoch: a permutation drawn from (seed, epoch)
    (or 0..n-1), wrapped to a multiple of ``world_size``, dealt round-robin.
    Every rank gets the same number of items; together they cover every item."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
    order = np.random.default_rng([seed, epoch]).permutation(n_items) if shuffle else np.arange(n_items)
    if n_items == 0:
        return order
    padded = np.resize(order, -(-n_items // world_size) * world_size)
    return padded[rank::world_size]


class RankSampler(Sampler[int]):
    """A DistributedSampler-like sampler built on :func:`rank_indices`;
    call :meth:`set_epoch` at the start of each epoch."""

    def __init__(self, n_items: int, *, rank: int = 0, world_size: int = 1, seed: int = 0, shuffle: bool = True) -> None:
        self.n_items, self.rank, self.world_size, self.seed, self.shuffle = n_items, rank, world_size, seed, shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.n_items // self.world_size)

    def __iter__(self) -> Iterator[int]:
        indices = rank_indices(
            self.n_items, rank=self.rank, world_size=self.world_size, epoch=self.epoch, seed=self.seed, shuffle=self.shuffle
        )
        return iter(indices.tolist())
