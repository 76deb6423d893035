"""Choosing the next token from masked logits: temperature, top-k, top-p, one generator per sample.

Every sample draws from its own numpy generator (seeded ``seed + i``): one
uniform number per choice, turned into a token by the cumulative
probabilities of the kept tokens. The draws do not depend on the array type
of the logits, so a torch model and its ONNX export choose the same tokens
from the same probabilities.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from midilm.sample.arrays import NumpyOps, TorchOps
from midilm.sample.config import SamplingConfig


def make_generators(config: SamplingConfig) -> list[np.random.Generator]:
    """Sample i draws from its own generator seeded ``seed + i``, so its tokens
    do not depend on what the other samples of the batch do."""
    return [np.random.default_rng(config.seed + i) for i in range(config.num_samples)]


def choose(
    logits: Any, mask: Any, config: SamplingConfig, generators: list[np.random.Generator], skip: np.ndarray, ops: NumpyOps | TorchOps
) -> np.ndarray:
    """One token per row of ``logits`` [B, V] among those the mask allows.

    Rows in ``skip`` have a single allowed token: it is taken without a draw,
    so a sample's generator advances only on its own choices.
    """
    scores = logits + mask
    if config.temperature == 0:
        return ops.to_numpy(scores.argmax(-1))
    scores = scores / config.temperature
    k = scores.shape[-1] if config.top_k == 0 else min(config.top_k, scores.shape[-1])
    top_scores, top_ids = ops.topk(scores, k)  # sorted, descending
    probs = ops.softmax(top_scores)
    if config.top_p < 1:
        before = ops.cumsum(probs) - probs  # mass of the more likely tokens
        probs = ops.where(before > config.top_p, 0.0, probs)
    cumulative = ops.cumsum(probs)
    uniforms = np.zeros(len(skip), dtype=np.float32)  # 0: index 0, the only allowed token
    for i in np.flatnonzero(~skip):
        uniforms[i] = generators[i].random()
    threshold = ops.asarray(uniforms) * cumulative[:, -1]
    picks = (cumulative <= threshold[:, None]).sum(-1)  # the first token whose cumulative mass passes the draw
    picks = ops.where(picks < k, picks, k - 1)
    return ops.to_numpy(ops.take(top_ids, picks)).astype(np.int64)
