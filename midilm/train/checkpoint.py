"""Checkpoints that survive crashes, and loading a model from any checkpoint form.

A checkpoint is a folder (``RUN/last``, ``RUN/best``) holding
``model.safetensors`` (weights, with the run config in the file's metadata so
the file alone rebuilds the model), ``state.pt`` (optimizer, scheduler, RNG and
data position; only tensors and plain containers, so it loads with
``torch.load(weights_only=True)``) and ``meta.json`` (step, losses). A folder
is written beside its final name and swapped in with renames, so a kill at any
moment leaves either the old or the new checkpoint whole, never a mix.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model

from midilm import vocab
from midilm.errors import CheckpointError, ConfigError
from midilm.files import open_regular
from midilm.train.config import RunConfig
from midilm.train.weights_fit import check_weights_fit
from midilm.validate import COUNT, NUMBER, OBJECT, TEXT, Check, check_object

WEIGHTS_FILE = "model.safetensors"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
"""What a LoRA run's checkpoints hold instead of the whole model (peft's file name; see midilm.hub.adapters)."""
STATE_FILE = "state.pt"
META_FILE = "meta.json"
CONFIG_KEY = "midilm_run_config"
META_KEY = "midilm_meta"
CHECKPOINT_NAMES = ("best", "last")
STATE_KEYS = ("optimizer", "schedule", "position", "rng")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(final: Path, write: Callable[[Path], None]) -> None:
    """Build a folder with ``write(tmp)`` and swap it in place of ``final``."""
    tmp = final.with_name(final.name + ".tmp")
    old = final.with_name(final.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    for child in tmp.iterdir():
        _fsync(child)
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    if os.name == "posix":
        _fsync(final.parent)


def existing_checkpoint(folder: Path) -> Path | None:
    """``folder`` if it holds a whole checkpoint, else the ``.old`` copy a kill
    between the two renames of :func:`write_atomically` left behind."""
    for candidate in (folder, folder.with_name(folder.name + ".old")):
        weights = (candidate / WEIGHTS_FILE).is_file() or (candidate / ADAPTER_WEIGHTS_FILE).is_file()
        if weights and (candidate / META_FILE).is_file():
            return candidate
    return None


def save_checkpoint(folder: Path, model: torch.nn.Module, run: RunConfig, meta: dict[str, Any], state: dict[str, Any] | None) -> None:
    """Write weights (+ run config), meta and, for resumable checkpoints, the training state."""

    def write(tmp: Path) -> None:
        save_model(model, str(tmp / WEIGHTS_FILE), metadata={CONFIG_KEY: run.to_json()})
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
        if state is not None:
            torch.save(state, tmp / STATE_FILE)

    write_atomically(folder, write)


def export_weights(
    path: Path, model: torch.nn.Module, run: RunConfig, meta: dict[str, Any] | None = None, dtype: torch.dtype = torch.bfloat16
) -> None:
    """One self-contained weights file in 16 bits (for shipping a model): the
    run config and the checkpoint's meta (step, validation loss) travel in its
    metadata; loading upcasts to the model's dtype."""
    half = copy.deepcopy(model).to(dtype)
    tmp = path.with_name(path.name + ".tmp")
    save_model(half, str(tmp), metadata={CONFIG_KEY: run.to_json(), META_KEY: json.dumps(meta or {})})
    os.replace(tmp, path)


def read_state(folder: Path) -> dict[str, Any]:
    """The resumable training state of a checkpoint folder."""
    path = folder / STATE_FILE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise CheckpointError(f"{folder}: no training state ({STATE_FILE}); this checkpoint can be loaded but not resumed") from exc
    except Exception as exc:  # torch raises several types for a damaged file
        raise CheckpointError(f"{path}: cannot read training state: {exc}") from exc
    return check_object(state, dict.fromkeys(STATE_KEYS, OBJECT), where=str(path), error=CheckpointError, required=STATE_KEYS)


META_FIELDS: dict[str, Check] = {"step": COUNT, "epoch": COUNT, "best_val_loss": NUMBER, "source": TEXT}
"""Fields of ``meta.json`` that midilm reads (other ``val_*`` figures are reported as they are)."""
META_MAX_BYTES = 1 << 20


def parse_meta(text: str | bytes, where: str) -> dict[str, Any]:
    """Checkpoint metadata (``meta.json``, or the copy in an exported weights
    file) parsed and checked: a JSON object whose known fields have their types."""
    try:
        meta = json.loads(text)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise CheckpointError(f"{where}: checkpoint metadata is not valid JSON: {exc}") from exc
    return check_object(meta, META_FIELDS, where=where, error=CheckpointError)


def read_meta(folder: Path) -> dict[str, Any]:
    """The checked ``meta.json`` of a checkpoint folder."""
    path = folder / META_FILE
    try:
        with open_regular(path) as handle:
            data = handle.read(META_MAX_BYTES + 1)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint metadata: {exc.strerror or exc}") from exc
    if len(data) > META_MAX_BYTES:
        raise CheckpointError(f"{path}: over {META_MAX_BYTES >> 20} MiB: not checkpoint metadata")
    return parse_meta(data, str(path))


def weights_metadata(weights: Path) -> dict[str, str]:
    """The string metadata of a safetensors file."""
    try:
        with safe_open(str(weights), framework="pt") as handle:
            return handle.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{weights}: not a readable safetensors file: {exc}") from exc


def read_run_config(weights: Path) -> RunConfig:
    """The run config stored in a weights file's metadata."""
    metadata = weights_metadata(weights)
    if CONFIG_KEY not in metadata:
        raise CheckpointError(f"{weights}: no midilm run config in this weights file")
    try:
        return RunConfig.from_json_dict(json.loads(metadata[CONFIG_KEY]), str(weights))
    except (ConfigError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{weights}: damaged run config: {exc}") from exc


def check_vocab(run: RunConfig, source: str) -> None:
    """Refuse weights made for another vocabulary (a model trained with
    ``--anticipation`` has the v2 vocabulary plus the anticipation ids)."""
    from midilm import anticipation

    size = getattr(run.model, "vocab_size", None)
    recorded = run.vocab.get("vocab_size", size) if run.vocab else size
    block = run.vocab.get("anticipation") if run.vocab else None
    if block is not None and block != anticipation.spec():
        raise CheckpointError(f"{source}: trained with anticipation ids {block}, this midilm uses {anticipation.spec()}")
    expected = anticipation.VOCAB_SIZE if block is not None else vocab.VOCAB_SIZE
    if size != expected or recorded != vocab.VOCAB_SIZE:
        raise CheckpointError(f"{source}: made for a vocabulary of {size} tokens, this midilm uses {expected} (SkyTNT v2)")


@dataclass
class LoadedModel:
    """A model ready for inference, and where it came from."""

    model: torch.nn.Module
    run: RunConfig
    source: Path
    meta: dict[str, Any]


def resolve_weights(path: str | Path) -> Path:
    """The weights file behind a run folder (its ``best``, else its ``last``),
    a checkpoint folder, or a weights file."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such checkpoint, run folder or weights file")
    for name in CHECKPOINT_NAMES:
        folder = existing_checkpoint(path / name)
        if folder is not None:
            return folder / WEIGHTS_FILE
    folder = existing_checkpoint(path)
    if folder is not None:
        return folder / WEIGHTS_FILE
    raise CheckpointError(f"{path}: holds no checkpoint (expected {' or '.join(CHECKPOINT_NAMES)}/{WEIGHTS_FILE} or {WEIGHTS_FILE})")


def load_for_inference(
    path: str | Path | None = None, device: str | torch.device = "cpu", adapter: str | Path | None = None
) -> LoadedModel:
    """Rebuild a model from a run folder, checkpoint folder, weights file, or a
    notebook ``best_model_lm.pt``, in eval mode on ``device``. Every other source
    (a hub id, an exported or SkyTNT folder, a LoRA run; none: the shipped model)
    and an ``adapter`` to fold in are handled by :mod:`midilm.hub.sources`."""
    from midilm.hub.sources import load_other
    from midilm.model import build_model, load_notebook_checkpoint

    other = load_other(path, device, adapter)
    if other is not None:
        return other
    weights = resolve_weights(path)
    if weights.suffix == ".pt":
        model_config, state_dict = load_notebook_checkpoint(weights)
        run = RunConfig(model=model_config, vocab=vocab.spec(), init=str(weights))
        model = build_model(model_config)
        model.load_state_dict(state_dict)
        meta: dict[str, Any] = {"source": "notebook"}
    else:
        run = read_run_config(weights)
        check_vocab(run, str(weights))
        check_weights_fit(weights, run.model)
        meta_path = weights.parent / META_FILE
        meta = read_meta(weights.parent) if meta_path.is_file() else parse_meta(weights_metadata(weights).get(META_KEY, "{}"), str(weights))
        model = build_model(run.model)
        load_weights(model, weights)
    model.to(device).eval()
    return LoadedModel(model=model, run=run, source=weights, meta=meta)


def load_weights(model: torch.nn.Module, weights: Path) -> None:
    """Load a weights file into ``model``, converting 16-bit weights to the model's dtype."""
    try:
        missing, unexpected = load_model(model, str(weights), strict=False)
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise CheckpointError(f"{weights}: weights do not fit this model: {exc}") from exc
    if missing or unexpected:
        raise CheckpointError(
            f"{weights}: weights do not fit this model (missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})"
        )
