"""Generated samples for evaluation, and their syntax error rate."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from midilm import vocab
from midilm.sample import generate
from midilm.sample.config import SamplingConfig


def generate_samples(model: torch.nn.Module, count: int, sampling: SamplingConfig, batch_size: int) -> list[np.ndarray]:
    """``count`` unprompted samples, ``batch_size`` at a time; sample i is drawn
    with seed ``sampling.seed + i`` whatever the batch size, as ``generate`` does."""
    samples: list[np.ndarray] = []
    for first in range(0, count, batch_size):
        batch = dataclasses.replace(sampling, num_samples=min(batch_size, count - first), seed=sampling.seed + first)
        samples.extend(generate(model, batch))
    return samples


def generated_rows(sample: np.ndarray) -> slice:
    """The rows of a sample that the model chose: after the BOS row, without a closing EOS row."""
    end = len(sample) - 1 if len(sample) > 1 and sample[-1, 0] == vocab.EOS else len(sample)
    return slice(1, end)


def syntax_errors(samples: list[np.ndarray]) -> dict[str, float]:
    """Generated rows that the tokenizer's grammar check rejects, over all samples."""
    from midilm.tokenizer.grammar import invalid_rows

    rows = invalid = 0
    for sample in samples:
        judged = np.asarray(invalid_rows(sample))[generated_rows(sample)]
        rows += len(judged)
        invalid += int(judged.sum())
    return {"rows": rows, "invalid_rows": invalid, "error_rate": invalid / rows if rows else float("nan")}
