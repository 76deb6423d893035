"""Choosing the next token from masked logits: temperature, top-k, top-p, one generator per sample."""

from __future__ import annotations

import torch

from midilm.sample.config import SamplingConfig


def make_generators(config: SamplingConfig, device: torch.device) -> list[torch.Generator]:
    """Sample i draws from its own generator seeded ``seed + i``, so its tokens
    do not depend on what the other samples of the batch do."""
    return [torch.Generator(device=device).manual_seed(config.seed + i) for i in range(config.num_samples)]


def choose(
    logits: torch.Tensor, mask: torch.Tensor, config: SamplingConfig, generators: list[torch.Generator], skip: torch.Tensor
) -> torch.Tensor:
    """One token per row of ``logits`` [B, V] among those the mask allows.

    Rows in ``skip`` have a single allowed token: it is taken without a draw,
    so a sample's generator advances only on its own choices.
    """
    scores = logits.float() + mask
    if config.temperature == 0:
        return scores.argmax(-1)
    scores = scores / config.temperature
    k = scores.shape[-1] if config.top_k == 0 else min(config.top_k, scores.shape[-1])
    top_scores, top_ids = torch.topk(scores, k, dim=-1)  # sorted, descending
    probs = torch.softmax(top_scores, dim=-1)
    if config.top_p < 1:
        before = torch.cumsum(probs, dim=-1) - probs  # mass of the more likely tokens
        probs = probs.masked_fill(before > config.top_p, 0.0)
    picks = torch.zeros(probs.shape[0], 1, dtype=torch.long, device=probs.device)  # index 0: the only allowed token
    for i in torch.nonzero(~skip).flatten().tolist():
        picks[i] = torch.multinomial(probs[i], 1, generator=generators[i])
    return top_ids.gather(-1, picks).squeeze(-1)
