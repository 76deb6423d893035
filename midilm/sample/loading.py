"""The model to sample from a path: a torch checkpoint, or an ONNX export read without importing torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from midilm.errors import ConfigError


@dataclass
class SamplingModel:
    """A model ready to sample (anything with ``sampling_decoder``), its run config, source, meta and device."""

    model: Any
    run: Any
    source: Path
    meta: dict[str, Any]
    device: str


def load_sampling_model(path: str | Path, device: str = "auto") -> SamplingModel:
    """An ONNX export folder (on the CPU, torch-free) or a torch checkpoint on ``device`` (auto, cpu, cuda, mps)."""
    from midilm.model.onnx_model import is_onnx_folder, load_onnx

    if is_onnx_folder(path):
        if device not in ("auto", "cpu"):
            raise ConfigError(f"{path}: an ONNX export runs on the CPU (ONNX Runtime); device {device!r} needs the torch checkpoint")
        loaded = load_onnx(path)
        return SamplingModel(loaded.model, loaded.run, loaded.source, loaded.meta, "cpu (onnxruntime)")
    from midilm.runtime import resolve_device
    from midilm.train import load_for_inference

    loaded = load_for_inference(path, resolve_device(device))
    return SamplingModel(loaded.model, loaded.run, loaded.source, loaded.meta, str(next(loaded.model.parameters()).device))
