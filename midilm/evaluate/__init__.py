"""Evaluation: likelihood on a split, music statistics of generated samples
against real files (Yang & Lerch), syntax errors, memorization, and reports.
See docs/evaluation.md."""

from midilm.evaluate.config import EvaluateConfig
from midilm.evaluate.run import evaluate_checkpoint

__all__ = ["EvaluateConfig", "evaluate_checkpoint"]
