"""Models over v2 tokens: config and presets, the three architectures, and
incremental (KV-cached) decoders. See docs/models.md.

Names load lazily: the config and presets are torch-free, so the CLI can offer
``--arch``/``--preset`` without importing torch.
"""

from __future__ import annotations

from midilm.lazy import lazy_exports

_EXPORTS = {
    "ARCHS": "midilm.model.registry",
    "architecture": "midilm.model.registry",
    "MidilmModel": "midilm.model.base",
    "PRESETS": "midilm.model.config",
    "ModelConfig": "midilm.model.config",
    "preset_config": "midilm.model.config",
    "build_model": "midilm.model.build",
    "count_parameters": "midilm.model.build",
    "flops_per_token": "midilm.model.build",
    "EventDecoder": "midilm.model.decoding",
    "make_decoder": "midilm.model.decoding",
    "load_notebook_checkpoint": "midilm.model.seed",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
