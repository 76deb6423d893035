"""midilm's own models in the Hub layout: ``config.json``, ``model.safetensors``, ``README.md``.

``config.json`` holds the run config that rebuilds the model (``run``: model,
training, data and vocabulary sections, as ``RUN/config.json``), the tokenizer
spec that prompts and stores must match, the checkpoint's meta (step,
validation loss) and the evaluation figures the model card shows. The weights
file is 16-bit by default and also carries the run config in its metadata, so
it loads on its own as well.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from midilm import __version__
from midilm.config import to_dict
from midilm.errors import CheckpointError, ConfigError
from midilm.hub.files import read_json_object
from midilm.train.checkpoint import WEIGHTS_FILE, LoadedModel, check_vocab, export_weights, load_weights
from midilm.train.config import RunConfig

CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
MODEL_TYPE = "midilm"


def is_exported_config(data: Any) -> bool:
    return isinstance(data, dict) and data.get("model_type") == MODEL_TYPE


def exported_config(loaded: LoadedModel, dtype: torch.dtype, evaluation: dict[str, Any]) -> dict[str, Any]:
    """The ``config.json`` of an exported model."""
    return {
        "model_type": MODEL_TYPE,
        "architecture": loaded.run.model.arch,
        "midilm_version": __version__,
        "weights": {"file": WEIGHTS_FILE, "dtype": str(dtype).removeprefix("torch.")},
        "tokenizer": loaded.run.data.tokenizer,
        "run": {**json.loads(loaded.run.to_json()), "model": to_dict(loaded.model.config)},  # explicit sizes
        "meta": loaded.meta,
        "evaluation": evaluation,
    }


def same_tensors(first: Path, second: Path) -> bool:
    """Whether two safetensors files hold the same tensors, names and dtypes included."""
    try:
        one, other = load_file(str(first)), load_file(str(second))
    except (SafetensorError, OSError):
        return False
    return one.keys() == other.keys() and all(one[k].dtype == other[k].dtype and torch.equal(one[k], other[k]) for k in one)


def write_exported(folder: Path, loaded: LoadedModel, dtype: torch.dtype, evaluation: dict[str, Any]) -> Path:
    """``config.json`` and ``model.safetensors`` (kept as it is when it already
    holds these weights); returns the weights file."""
    folder.mkdir(parents=True, exist_ok=True)
    weights, fresh = folder / WEIGHTS_FILE, folder / (WEIGHTS_FILE + ".new")
    export_weights(fresh, loaded.model, loaded.run, loaded.meta, dtype)
    if weights.is_file() and same_tensors(weights, fresh):
        fresh.unlink()  # the same weights: the file stays as it is (a file under version control does not change)
    else:
        os.replace(fresh, weights)
    (folder / CONFIG_FILE).write_text(json.dumps(exported_config(loaded, dtype, evaluation), indent=2) + "\n")
    return weights


def _read(folder: Path) -> tuple[RunConfig, dict[str, Any]]:
    """The checked run config of an exported folder, and its whole ``config.json``."""
    config_path = folder / CONFIG_FILE
    data = read_json_object(config_path, "exported model config")
    try:
        run = RunConfig.from_json_dict(data.get("run"), f"{config_path}:run")
    except ConfigError as exc:
        raise CheckpointError(f"{config_path}: {exc}") from exc
    tokenizer = data.get("tokenizer") or {}
    if tokenizer and run.data.tokenizer and tokenizer != run.data.tokenizer:
        raise CheckpointError(f"{config_path}: the tokenizer spec differs from the one in the run config; the file was edited")
    run.data.tokenizer = run.data.tokenizer or tokenizer
    check_vocab(run, str(config_path))
    return run, data


def load_exported_run(folder: Path) -> RunConfig:
    """The run config of an exported folder, without its weights."""
    return _read(folder)[0]


def load_exported(folder: Path, device: str | torch.device) -> LoadedModel:
    """A model exported by :func:`write_exported`, in eval mode on ``device``."""
    from midilm.model import build_model

    run, data = _read(folder)
    model = build_model(run.model)
    load_weights(model, folder / WEIGHTS_FILE)
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    return LoadedModel(model=model.to(device).eval(), run=run, source=folder / WEIGHTS_FILE, meta=meta)
