"""Training: runs that log, checkpoint atomically, resume exactly, and scale with torchrun."""

from midilm.train.checkpoint import LoadedModel, export_weights, load_for_inference
from midilm.train.config import FINE_TUNE_LR, RunConfig, TrainConfig
from midilm.train.loop import TrainResult, resume_run, start_run

__all__ = [
    "FINE_TUNE_LR",
    "LoadedModel",
    "RunConfig",
    "TrainConfig",
    "TrainResult",
    "export_weights",
    "load_for_inference",
    "resume_run",
    "start_run",
]
