"""Key/value caches for incremental decoding.

:class:`KVCache`: keys and values of every layer live in two tensors allocated
once for the whole context, so a decoding step writes one position in place
instead of concatenating (which would copy the whole history at every token).

:class:`StepKVCache`: the same cache seen from one exported or compiled step:
the past arrives as inputs (fixed capacity, the first ``start`` positions
valid); an exported step writes the new keys and values into it and returns
it, a torch step returns the new keys and values for its runner to write.

Attention layers talk to either through ``cache.attend(layer, q, k, v)`` and
read the position of their first new token from ``cache.length`` (an int, or a
0-d tensor in a step: compute positions as ``start + torch.arange(t)``). A
model's cache (``model.new_cache``) is a :class:`KVCache` or an object whose
attributes are :class:`KVCache` objects (``seed`` has two); :func:`step_cache`
mirrors that structure for a step.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from midilm.errors import ConfigError
from midilm.model.attention import attention_past_and_new, causal_attention, exported_attention, operator_lengths
from midilm.model.rotary import Unrotated


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

    def attend(
        self, layer: int, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, unrotated: Unrotated | None = None
    ) -> torch.Tensor:
        """Store the new positions' keys and values and attend over all of the layer's so far
        (``unrotated``, for a step's export, is not needed here)."""
        n_past = self.length
        all_keys, all_values = self.extend(layer, keys, values)
        return causal_attention(q, all_keys, all_values, n_past)

    def advance(self, n_positions: int) -> None:
        self.length += n_positions

    def reset(self) -> None:
        self.length = 0


class StepKVCache:
    """One step's view of a cache: past keys and values per layer ``[B, H, C, hd]``
    given as tensors, of which positions ``< start`` are valid. :attr:`step_keys`
    and :attr:`step_values` collect the step's outputs per layer: in an ONNX
    export the caches with the new positions written (the operator writes them
    into the buffers the decoder binds), run in torch the new positions' keys
    and values ``[B, H, t, hd]`` (the runner writes them into its cache, outside
    a compiled graph)."""

    def __init__(self, past_keys: list[torch.Tensor], past_values: list[torch.Tensor], start: torch.Tensor) -> None:
        self.past_keys, self.past_values = past_keys, past_values
        self.length = start
        self.step_keys: list[torch.Tensor | None] = [None] * len(past_keys)
        self.step_values: list[torch.Tensor | None] = [None] * len(past_keys)
        self._lengths: tuple[torch.Tensor, torch.Tensor] | None = None

    def attend(
        self, layer: int, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, unrotated: Unrotated | None = None
    ) -> torch.Tensor:
        past_k, past_v = self.past_keys[layer], self.past_values[layer]
        if not torch.onnx.is_in_onnx_export():
            self.step_keys[layer], self.step_values[layer] = keys, values
            return attention_past_and_new(q, past_k, past_v, keys, values, self.length)
        if self._lengths is None:
            self._lengths = operator_lengths(self.length, q)  # once for every layer of the export
        y, self.step_keys[layer], self.step_values[layer] = exported_attention(q, past_k, past_v, keys, values, self._lengths, unrotated)
        return y

    def advance(self, n_positions: int) -> None:
        """The caller counts the new positions; nothing moves here."""

    def reset(self) -> None:
        """A step's view holds nothing of its own."""


def cache_parts(cache: Any) -> list[KVCache]:
    """The :class:`KVCache` objects of a model's cache, in a fixed order."""
    if isinstance(cache, KVCache):
        return [cache]
    parts = [value for _, value in sorted(vars(cache).items()) if isinstance(value, KVCache)]
    if not parts:
        raise ConfigError(
            f"model cache: {type(cache).__name__} holds no KVCache (a model's new_cache must return KVCaches or an object of them)"
        )
    return parts


def layer_shapes(cache: Any) -> list[tuple[int, int, int]]:
    """``(heads, capacity, head_dim)`` of every cached layer, part after part."""
    return [(part.keys.size(2), part.capacity, part.keys.size(4)) for part in cache_parts(cache) for _ in range(part.keys.size(0))]


def step_cache(cache: Any, past: list[torch.Tensor], start: torch.Tensor) -> tuple[Any, list[StepKVCache]]:
    """A cache of the same structure as ``cache`` whose parts are
    :class:`StepKVCache` objects over ``past`` (every layer's keys, then every
    layer's values, in :func:`layer_shapes` order); and those parts."""
    parts = cache_parts(cache)
    n_layers = len(past) // 2
    keys, values = past[:n_layers], past[n_layers:]
    steps, first = [], 0
    for part in parts:
        count = part.keys.size(0)
        steps.append(StepKVCache(keys[first : first + count], values[first : first + count], start))
        first += count
    if isinstance(cache, KVCache):
        return steps[0], steps
    mirrored = copy.copy(cache)
    names = [name for name, value in sorted(vars(cache).items()) if isinstance(value, KVCache)]
    for name, part in zip(names, steps, strict=True):
        setattr(mirrored, name, part)
    return mirrored, steps
