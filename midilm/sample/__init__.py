"""Sampling: grammar-constrained, batched, KV-cached generation with prompts and controls.

Names load lazily so that the CLI can read the config dataclasses without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Controls": "midilm.sample.config",
    "SamplingConfig": "midilm.sample.config",
    "GenerationResult": "midilm.sample.sampler",
    "generate": "midilm.sample.sampler",
    "sample_events": "midilm.sample.sampler",
    "start_rows": "midilm.sample.sampler",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'midilm.sample' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
