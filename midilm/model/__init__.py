"""Models over v2 tokens: config and presets, the three architectures, and
incremental (KV-cached) decoders. See docs/models.md."""

from midilm.model.build import build_model, count_parameters, flops_per_token
from midilm.model.config import ARCHS, PRESETS, ModelConfig, preset_config
from midilm.model.decoding import EventDecoder, make_decoder
from midilm.model.seed import load_notebook_checkpoint

__all__ = [
    "ARCHS",
    "PRESETS",
    "EventDecoder",
    "ModelConfig",
    "build_model",
    "count_parameters",
    "flops_per_token",
    "load_notebook_checkpoint",
    "make_decoder",
    "preset_config",
]
