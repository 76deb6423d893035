"""Which models the page offers, and loading each one once."""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import partial
from pathlib import Path

import torch

from midilm.errors import CheckpointError, ConfigError
from midilm.hub.adapters import read_adapter
from midilm.hub.sources import ADAPTER, EXPORTED, SKYTNT, checkpoint_files, recorded_base, resolve
from midilm.model.onnx_model import MODEL_FILE, is_onnx_folder, load_onnx
from midilm.train.checkpoint import ADAPTER_WEIGHTS_FILE, WEIGHTS_FILE, LoadedModel, load_for_inference, read_meta, resolve_weights

DEFAULT_MODEL_LABEL = "default model (shipped with midilm)"
NO_ADAPTER_LABEL = "none"
KIND_LABELS = {EXPORTED: "exported model", SKYTNT: "SkyTNT model", ADAPTER: "LoRA adapter"}
CACHED_MODELS = 2
"""Models kept in memory: the one in use and the one before it, so comparing two is instant."""


def shipped_model() -> Path | None:
    """The model inside the package, or None while none is installed."""
    from midilm.cli.generate import default_checkpoint

    try:
        return default_checkpoint()
    except CheckpointError:
        return None


def find_runs(runs_dir: Path, *, adapters_only: bool = False) -> list[Path]:
    """Folders in ``runs_dir`` (itself included) that hold a model (runs, exported
    and SkyTNT folders, LoRA runs and adapters that name their base), or with
    ``adapters_only`` every LoRA adapter, the most recently saved first."""
    if not runs_dir.is_dir():
        return []
    found: dict[Path, float] = {}
    for folder in [runs_dir, *sorted(p for p in runs_dir.iterdir() if p.is_dir())]:
        try:
            source = resolve(folder)
            if adapters_only:
                wanted = source.kind == ADAPTER
            else:  # an adapter loads on its own only when it names its base
                wanted = source.kind != ADAPTER or bool(recorded_base(read_adapter(source.path)))
            if not wanted:
                continue
            found[folder] = max(path.stat().st_mtime for path in checkpoint_files(source))
        except (CheckpointError, OSError):
            continue
    return sorted(found, key=lambda folder: -found[folder])


def checkpoint_label(path: Path) -> str:
    """The path, and what it is: which checkpoint of a run loads (best or last) at which step, or the kind of model."""
    source = resolve(path)
    if source.kind in KIND_LABELS and source.path == path:
        return f"{path} ({KIND_LABELS[source.kind]})"
    weights = source.path / ADAPTER_WEIGHTS_FILE if source.kind == ADAPTER else resolve_weights(path)
    if weights in (path, path / WEIGHTS_FILE):
        return str(path)
    try:
        step = read_meta(weights.parent).get("step")
    except CheckpointError as exc:  # offered all the same: choosing it shows the reason, and the other runs stay listed
        return f"{path} ({weights.parent.name}, unreadable: {exc})"
    lora = ", LoRA adapter" if source.kind == ADAPTER else ""
    return f"{path} ({weights.parent.name}{f', step {step}' if step is not None else ''}{lora})"


def adapter_choices(runs_dir: Path, chosen: str | None = None) -> list[tuple[str, str]]:
    """(label, path) of the LoRA adapters to offer on top of the chosen model: none,
    ``chosen`` (from the command line), then the adapters found in ``runs_dir``."""
    choices = [(NO_ADAPTER_LABEL, "")]
    if chosen:
        choices.append((str(chosen), str(chosen)))
    taken = {Path(chosen).resolve()} if chosen else set()
    return choices + [(str(folder), str(folder)) for folder in find_runs(runs_dir, adapters_only=True) if folder.resolve() not in taken]


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
        self._models: OrderedDict[tuple[tuple[str, int], ...], LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, checkpoint: str | Path | None, adapter: str | Path | None = None) -> LoadedModel:
        """The model of ``checkpoint`` (with ``adapter`` folded in), loaded unless cached and unchanged."""
        if not checkpoint or not str(checkpoint).strip():
            raise ConfigError("checkpoint: choose a model, or type the path of a run folder or weights file")
        path = Path(str(checkpoint).strip()).expanduser()
        has_adapter = bool(adapter and str(adapter).strip())
        if is_onnx_folder(path):
            if has_adapter:
                raise ConfigError(
                    f"{path}: an ONNX export's weights are fixed; export it with the adapter folded in (midilm export MODEL --lora-adapter DIR --format onnx)"
                )
            files, load = [path / MODEL_FILE], partial(load_onnx, path)
        else:
            sources = [resolve(str(checkpoint).strip())] + ([resolve(str(adapter).strip())] if has_adapter else [])
            files = [file for source in sources for file in checkpoint_files(source)]
            load = partial(load_for_inference, sources[0].name, self.device, adapter=sources[1].name if len(sources) > 1 else None)
        key = tuple((str(file.resolve()), file.stat().st_mtime_ns) for file in files)
        with self._lock:
            if key not in self._models:
                self._models[key] = load()
                while len(self._models) > self.capacity:
                    self._models.popitem(last=False)
            self._models.move_to_end(key)
            return self._models[key]
