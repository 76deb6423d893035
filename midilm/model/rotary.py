"""Rotary positions: the angle tables and the rotation of each head's two halves (float32)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def rotary_tables(
    start: int | torch.Tensor, length: int, head_dim: int, base: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosines and sines ``[length, head_dim/2]`` (float32) for positions
    ``start .. start+length-1``. Computed per forward rather than stored as
    buffers, so that ``model.to(bfloat16)`` cannot round the angles."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
    positions = start + torch.arange(length, device=device, dtype=torch.float32)  # start: an int, or a 0-d tensor in a traced step
    angles = torch.outer(positions, inv_freq)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the two halves of each head ``x [..., T, hd]`` by the position angles."""
    x32 = x.float()
    first, second = x32.chunk(2, dim=-1)
    rotated = torch.cat((first * cos - second * sin, first * sin + second * cos), dim=-1)
    return rotated.type_as(x)


@dataclass
class Unrotated:
    """Queries, keys and values before rotary positions, as the projections gave
    them: ``rows`` is the packed ``[B, T, (H + 2 KV) hd]`` (queries, then keys,
    then values) or the three ``[B, T, n hd]``; ``base`` is the rotary base.
    Given to a cache's ``attend`` beside the rotated heads, it lets an ONNX
    export rotate inside the attention operator (one node instead of a dozen)."""

    rows: tuple[torch.Tensor, ...]
    base: float
