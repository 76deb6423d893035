"""Sampling: grammar-constrained, batched, KV-cached generation with prompts and controls.

Names load lazily so that the CLI can read the config dataclasses without importing torch.
"""

from __future__ import annotations

from midilm.lazy import lazy_exports

_EXPORTS = {
    "Controls": "midilm.sample.config",
    "SamplingConfig": "midilm.sample.config",
    "GenerationResult": "midilm.sample.sampler",
    "generate": "midilm.sample.sampler",
    "accompany": "midilm.sample.accompany",
    "infill": "midilm.sample.infill",
    "sample_events": "midilm.sample.sampler",
    "start_rows": "midilm.sample.sampler",
    "stream": "midilm.sample.sampler",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
