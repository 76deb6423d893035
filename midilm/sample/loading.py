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


def load_sampling_model(path: str | Path | None = None, device: str = "auto", adapter: str | Path | None = None) -> SamplingModel:
    """An ONNX export folder (on the CPU, torch-free) or any model form that
    :func:`midilm.train.load_for_inference` reads (None: the shipped model),
    with ``adapter`` folded in, on ``device`` (auto, cpu, cuda, mps)."""
    from midilm.model.onnx_model import is_onnx_folder, load_onnx

    if path is not None and is_onnx_folder(path):
        if adapter:
            raise ConfigError(
                f"{path}: an ONNX export's weights are fixed; export it with the adapter folded in (midilm export MODEL --lora-adapter DIR --format onnx)"
            )
        if device not in ("auto", "cpu"):
            raise ConfigError(f"{path}: an ONNX export runs on the CPU (ONNX Runtime); device {device!r} needs the torch checkpoint")
        loaded = load_onnx(path)
        return SamplingModel(loaded.model, loaded.run, loaded.source, loaded.meta, "cpu (onnxruntime)")
    from midilm.runtime import resolve_device
    from midilm.train import load_for_inference

    loaded = load_for_inference(path, resolve_device(device), adapter=adapter)
    return SamplingModel(loaded.model, loaded.run, loaded.source, loaded.meta, str(next(loaded.model.parameters()).device))
