"""Training: runs that log, checkpoint atomically, resume exactly, and scale with torchrun.

Names load lazily so that the CLI can read the config dataclasses without importing torch.
"""

from __future__ import annotations

from midilm.lazy import lazy_exports

_EXPORTS = {
    "FINE_TUNE_LR": "midilm.train.config",
    "RunConfig": "midilm.train.config",
    "TrainConfig": "midilm.train.config",
    "LoadedModel": "midilm.train.checkpoint",
    "export_weights": "midilm.train.checkpoint",
    "load_for_inference": "midilm.train.checkpoint",
    "TrainResult": "midilm.train.loop",
    "resume_run": "midilm.train.loop",
    "start_run": "midilm.train.loop",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
