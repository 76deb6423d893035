"""Which models the page offers, and loading each one once."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import torch

from midilm.errors import CheckpointError, ConfigError
from midilm.model.onnx_model import MODEL_FILE, is_onnx_folder, load_onnx
from midilm.train.checkpoint import WEIGHTS_FILE, LoadedModel, load_for_inference, read_meta, resolve_weights

DEFAULT_MODEL_LABEL = "default model (shipped with midilm)"
CACHED_MODELS = 2
"""Models kept in memory: the one in use and the one before it, so comparing two is instant."""


def shipped_model() -> Path | None:
    """The model inside the package, or None while none is installed."""
    from midilm.cli.generate import default_checkpoint

    try:
        return default_checkpoint()
    except CheckpointError:
        return None


def find_runs(runs_dir: Path) -> list[Path]:
    """Run or checkpoint folders in ``runs_dir`` (itself included) that hold a
    loadable checkpoint, the most recently saved first."""
    if not runs_dir.is_dir():
        return []
    found: dict[Path, float] = {}
    for folder in [runs_dir, *sorted(p for p in runs_dir.iterdir() if p.is_dir())]:
        try:
            found[folder] = resolve_weights(folder).stat().st_mtime
        except CheckpointError:
            continue
    return sorted(found, key=lambda folder: -found[folder])


def checkpoint_label(path: Path) -> str:
    """The path, and for a run folder which of its checkpoints loads (best or last) at which step."""
    weights = resolve_weights(path)
    if weights in (path, path / WEIGHTS_FILE):
        return str(path)
    step = read_meta(weights.parent).get("step")
    return f"{path} ({weights.parent.name}{f', step {step}' if step is not None else ''})"


def checkpoint_choices(runs_dir: Path, chosen: str | None = None) -> list[tuple[str, str]]:
    """(label, path) of each model to offer: ``chosen`` (from the command line),
    the shipped model, then the runs found in ``runs_dir``."""
    choices: list[tuple[str, str]] = []
    if chosen:
        choices.append((checkpoint_label(Path(chosen)), chosen))
    shipped = shipped_model()
    if shipped is not None:
        choices.append((DEFAULT_MODEL_LABEL, str(shipped)))
    taken = {Path(path).resolve() for _, path in choices}
    choices += [(checkpoint_label(folder), str(folder)) for folder in find_runs(runs_dir) if folder.resolve() not in taken]
    return choices


class ModelCache:
    """Models by checkpoint file (or ONNX export folder), each loaded once. A checkpoint rewritten since
    (a training still running saves a new ``best``) is loaded again."""

    def __init__(self, device: torch.device, capacity: int = CACHED_MODELS) -> None:
        self.device = device
        self.capacity = capacity
        self._models: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, checkpoint: str | Path | None) -> LoadedModel:
        if not checkpoint or not str(checkpoint).strip():
            raise ConfigError("checkpoint: choose a model, or type the path of a run folder or weights file")
        path = Path(str(checkpoint).strip()).expanduser()
        onnx = is_onnx_folder(path)
        weights = path / MODEL_FILE if onnx else resolve_weights(path)
        key = (str(weights.resolve()), weights.stat().st_mtime_ns)
        with self._lock:
            if key not in self._models:
                self._models[key] = load_onnx(path) if onnx else load_for_inference(weights, self.device)
                while len(self._models) > self.capacity:
                    self._models.popitem(last=False)
            self._models.move_to_end(key)
            return self._models[key]
