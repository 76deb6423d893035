"""Sampling: grammar-constrained, batched, KV-cached generation with prompts and controls."""

from midilm.sample.config import Controls, SamplingConfig
from midilm.sample.generate import GenerationResult, generate, sample_events, start_rows

__all__ = ["Controls", "GenerationResult", "SamplingConfig", "generate", "sample_events", "start_rows"]
