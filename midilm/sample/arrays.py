"""The few array operations that choosing a token needs, for numpy and for torch.

The sampler runs one algorithm whatever computes the logits: the decoder's
logits decide the array type (a torch tensor from a torch decoder, on its
device; a numpy array from ONNX Runtime), and :func:`array_ops` gives the
matching operations. Torch is imported only for torch logits, so sampling an
ONNX model never imports it.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class NumpyOps:
    """Operations on numpy arrays (the last axis is the vocabulary)."""

    def asarray(self, values: np.ndarray) -> np.ndarray:
        return values

    def to_numpy(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values)

    def topk(self, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` largest scores of each row, largest first, and their indices."""
        ids = np.argpartition(-scores, k - 1, axis=-1)[:, :k] if k < scores.shape[-1] else np.broadcast_to(np.arange(k), scores.shape)
        top = np.take_along_axis(scores, ids, axis=-1)
        order = np.argsort(-top, axis=-1, kind="stable")
        return np.take_along_axis(top, order, axis=-1), np.take_along_axis(ids, order, axis=-1)

    def softmax(self, scores: np.ndarray) -> np.ndarray:
        shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)

    def cumsum(self, values: np.ndarray) -> np.ndarray:
        return np.cumsum(values, axis=-1)

    def take(self, values: np.ndarray, index: np.ndarray) -> np.ndarray:
        """``values[b, index[b]]`` for every row."""
        return np.take_along_axis(values, index[:, None], axis=-1)[:, 0]

    def where(self, condition: Any, chosen: Any, other: Any) -> np.ndarray:
        return np.where(condition, chosen, other)


class TorchOps:
    """The same operations on torch tensors of one device."""

    def __init__(self, device: Any) -> None:
        import torch

        self.torch = torch
        self.device = device

    def asarray(self, values: np.ndarray) -> Any:
        return self.torch.as_tensor(values, device=self.device)

    def to_numpy(self, values: Any) -> np.ndarray:
        return values.cpu().numpy()

    def topk(self, scores: Any, k: int) -> tuple[Any, Any]:
        return self.torch.topk(scores, k, dim=-1)

    def softmax(self, scores: Any) -> Any:
        return self.torch.softmax(scores, dim=-1)

    def cumsum(self, values: Any) -> Any:
        return self.torch.cumsum(values, dim=-1)

    def take(self, values: Any, index: Any) -> Any:
        return values.gather(-1, index[:, None])[:, 0]

    def where(self, condition: Any, chosen: Any, other: Any) -> Any:
        return self.torch.where(condition, chosen, other)


def array_ops(logits: Any) -> NumpyOps | TorchOps:
    """The operations for arrays of the type of ``logits``."""
    if isinstance(logits, np.ndarray):
        return NumpyOps()
    return TorchOps(logits.device)
