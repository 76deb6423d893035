"""A preallocated key/value cache for incremental decoding.

Keys and values of every layer live in two tensors allocated once for the
whole context, so a decoding step writes one position in place instead of
concatenating (which would copy the whole history at every token).
"""

from __future__ import annotations

import torch

from midilm.errors import ConfigError


class KVCache:
    """Keys and values of ``n_layers`` attention layers for ``capacity`` positions.

    A forward pass over ``t`` new positions calls :meth:`extend` once per layer
    (all layers write the same slice) and then :meth:`advance` once.
    """

    def __init__(
        self,
        n_layers: int,
        batch_size: int,
        n_heads: int,
        head_dim: int,
        capacity: int,
        *,
        device: torch.device | str,
        dtype: torch.dtype,
    ) -> None:
        shape = (n_layers, batch_size, n_heads, capacity, head_dim)
        # uninitialised: only positions already written are ever read, and the memory of
        # the others is not touched (a context of 4096 events costs what is used of it)
        self.keys = torch.empty(shape, device=device, dtype=dtype)
        self.values = torch.empty(shape, device=device, dtype=dtype)
        self.capacity = capacity
        self.length = 0
        """Positions already stored; the next ones are written from here."""

    def extend(self, layer: int, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store a layer's keys and values ``[B, H, t, hd]`` after the cached
        positions and return all of that layer's keys and values so far."""
        end = self.length + keys.size(2)
        if end > self.capacity:
            raise ConfigError(f"KV cache: {end} positions exceed its capacity of {self.capacity}; the decoder should have slid its window")
        self.keys[layer, :, :, self.length : end] = keys
        self.values[layer, :, :, self.length : end] = values
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

    def advance(self, n_positions: int) -> None:
        self.length += n_positions

    def reset(self) -> None:
        self.length = 0
