"""Every form a model comes in, found on this machine and loaded the same way.

A *source* is what a user names with ``--checkpoint``, ``--init`` or
``midilm.load_model``:

| kind | what it is |
|---|---|
| ``run`` | a run folder (its best, else last checkpoint), a checkpoint folder, a weights file, a notebook ``.pt`` |
| ``exported`` | a folder written by ``midilm export`` (and the shipped model, which is one) |
| ``skytnt`` | a folder in SkyTNT's Hub layout, or a Lightning ``.ckpt`` with its ``config.json`` |
| ``adapter`` | a LoRA adapter in peft's format: a midilm LoRA run or checkpoint, or an adapter folder |

``hf:OWNER/NAME[@REVISION]`` is downloaded (or found in the Hugging Face cache)
and is then one of these; no name at all is the shipped model. An adapter is
applied to its base: the one it records (a midilm LoRA run records it by path
or hub id and by content hash, and refuses another) or the one given beside it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import torch

from midilm import vocab
from midilm.errors import CheckpointError, ConfigError
from midilm.hub import adapters, exported, hub_ids, skytnt_layout
from midilm.hub.files import file_sha256, read_json_object
from midilm.train.checkpoint import CHECKPOINT_NAMES, META_FILE, LoadedModel, existing_checkpoint, read_meta

RUN, EXPORTED, SKYTNT, ADAPTER = "run", "exported", "skytnt", "adapter"


@dataclass(frozen=True)
class Source:
    """A model named by the user, found on this machine."""

    kind: str
    path: Path
    """The file or folder to read (for a hub id, inside its snapshot in the Hugging Face cache)."""
    name: str
    """How to name it again from anywhere: the hub id, or the absolute path."""


def shipped_model() -> Path:
    """The model inside the package (an exported folder), so a fresh install makes music at once."""
    path = Path(str(files("midilm") / "assets" / "default-model"))
    if not (path / exported.CONFIG_FILE).is_file():
        raise CheckpointError(f"no default model installed at {path}; pass --checkpoint RUN (train one with `midilm train`)")
    return path


def resolve(given: str | os.PathLike | None) -> Source:
    """Find a source: a path, a hub id (downloaded unless cached), or None for the shipped model."""
    if given is None or not str(given).strip():
        folder = shipped_model()
        return Source(EXPORTED, folder, str(folder))
    text = str(given).strip()
    if hub_ids.is_hub_id(text):
        hub_id = hub_ids.parse_hub_id(text)
        folder = hub_ids.download(hub_id)
        kind, path = classify(folder)
        return Source(kind, path, str(hub_id))
    kind, path = classify(Path(text).expanduser())
    return Source(kind, path, str(Path(text).expanduser().resolve()))


def classify(path: Path) -> tuple[str, Path]:
    """The kind of a local source, and the file or folder that holds it."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint, run or model folder, adapter or weights file")
    if path.is_file():
        if path.suffix == skytnt_layout.LIGHTNING_SUFFIX:
            return SKYTNT, path
        if path.name == adapters.ADAPTER_WEIGHTS:
            return ADAPTER, path.parent
        return RUN, path
    if adapters.is_adapter_folder(path):
        return ADAPTER, path
    config_path = path / exported.CONFIG_FILE
    if config_path.is_file():
        data = read_json_object(config_path, "model config")
        if skytnt_layout.is_skytnt_config(data):
            return SKYTNT, path
        if exported.is_exported_config(data):
            return EXPORTED, path
    for folder in [*(path / name for name in CHECKPOINT_NAMES), path]:
        found = existing_checkpoint(folder)
        if found is not None and adapters.is_adapter_folder(found):
            return ADAPTER, found  # a LoRA run: its checkpoints hold adapters only
        if found is not None:
            break
    return RUN, path


def checkpoint_files(source: Source) -> list[Path]:
    """The files whose content defines the model (their modification times tell the app to reload)."""
    if source.kind == ADAPTER:
        return [source.path / adapters.ADAPTER_WEIGHTS]
    if source.kind == EXPORTED:
        return [source.path / skytnt_layout.WEIGHTS_FILE]
    if source.kind == SKYTNT:
        return [skytnt_layout.weights_file(source.path)]
    from midilm.train.checkpoint import resolve_weights

    return [resolve_weights(source.path)]


def recorded_run(given: str | os.PathLike | None):
    """The run config a source records, read without loading weights (None for a
    SkyTNT folder, which records no midilm run)."""
    from midilm.train.checkpoint import read_run_config, resolve_weights

    source = resolve(given)
    if source.kind == EXPORTED:
        return exported.load_exported_run(source.path)
    if source.kind == ADAPTER:
        return _adapter_run(adapters.read_adapter(source.path))
    if source.kind == RUN:
        weights = resolve_weights(source.path)
        return read_run_config(weights) if weights.suffix == ".safetensors" else None
    return None


def load_source(source: Source, device: str | torch.device = "cpu") -> LoadedModel:
    """Load any source in eval mode on ``device`` (an adapter on the base it records)."""
    from midilm.train.checkpoint import load_for_inference

    if source.kind == EXPORTED:
        return exported.load_exported(source.path, device)
    if source.kind == SKYTNT:
        return load_skytnt(source.path, device)
    if source.kind == ADAPTER:
        return with_adapter(None, source, device)
    return load_for_inference(source.path, device)


def load_skytnt(path: Path, device: str | torch.device) -> LoadedModel:
    """A SkyTNT checkpoint as a ``skytnt`` model; its tokens are midilm's with ``optimise`` as its ``optimise_midi``."""
    from midilm.model import build_model
    from midilm.tokenizer import TokenizerOptions
    from midilm.train.config import DataRef, RunConfig

    checkpoint = skytnt_layout.locate(path)
    model = build_model(checkpoint.config)
    skytnt_layout.load_weights(model, checkpoint.weights)
    run = RunConfig(
        model=checkpoint.config, data=DataRef(tokenizer=TokenizerOptions(optimise=checkpoint.optimise_midi).spec()), vocab=vocab.spec()
    )
    meta = {"source": f"SkyTNT midi-model ({checkpoint.dtype} weights)"}
    return LoadedModel(model=model.to(device).eval(), run=run, source=checkpoint.weights, meta=meta)


def with_adapter(base: LoadedModel | None, source: Source, device: str | torch.device) -> LoadedModel:
    """Fold the adapter at ``source`` into ``base`` (default: the base the adapter records)."""
    from midilm.train.checkpoint import load_for_inference

    adapter = adapters.read_adapter(source.path)
    run = _adapter_run(adapter)
    if base is None:
        base_name = recorded_base(adapter)
        if not base_name:
            raise CheckpointError(
                f"{source.path}: a LoRA adapter that does not record its base: give the base model, "
                f"e.g. --checkpoint BASE --lora-adapter {source.path}"
            )
        base = load_for_inference(base_name, device)
    if run is not None:
        _check_base(run, base, source)
    adapters.merge_into(base.model, adapter)
    meta = read_meta(source.path) if (source.path / META_FILE).is_file() else json.loads(adapter.metadata.get(adapters.META_KEY, "{}"))
    return LoadedModel(model=base.model, run=run if run is not None else base.run, source=source.path / adapters.ADAPTER_WEIGHTS, meta=meta)


def _adapter_run(adapter: adapters.Adapter):
    """The run config a midilm LoRA run wrote into the adapter file (None for other adapters)."""
    from midilm.train.config import RunConfig

    text = adapter.metadata.get(adapters.CONFIG_KEY)
    if text is None:
        return None
    try:
        return RunConfig.from_json_dict(json.loads(text), f"{adapter.folder}:{adapters.ADAPTER_WEIGHTS}")
    except (ConfigError, ValueError) as exc:
        raise CheckpointError(f"{adapter.folder}: damaged run config in the adapter file: {exc}") from exc


def recorded_base(adapter: adapters.Adapter) -> str:
    """The base an adapter names ("" when none): a midilm LoRA run's ``init``, else
    peft's ``base_model_name_or_path`` (``OWNER/NAME`` there is a hub id)."""
    run = _adapter_run(adapter)
    if run is not None:
        return run.init
    hub_id = hub_ids.from_peft_base(adapter.base)
    return str(hub_id) if hub_id is not None else adapter.base


def _check_base(run, base: LoadedModel, source: Source) -> None:
    """Refuse a base other than the one a midilm LoRA run was trained on."""
    if run.model != base.run.model:
        raise CheckpointError(f"{source.path}: trained on a {run.model.arch} base of another shape than {base.source}")
    if run.init_sha256 and file_sha256(base.source) != run.init_sha256:
        raise CheckpointError(
            f"{source.path}: trained on {run.init} (weights sha256 {run.init_sha256[:12]}...), but {base.source} holds other weights "
            f"(sha256 {file_sha256(base.source)[:12]}...); an adapter only fits the base it was trained on"
        )


def load_other(given: str | os.PathLike | None, device: str | torch.device, adapter: str | os.PathLike | None) -> LoadedModel | None:
    """Load ``given`` (with ``adapter`` folded in) unless it is a plain midilm
    checkpoint named by its path, which :func:`midilm.train.checkpoint.load_for_inference` reads itself (None)."""
    source = resolve(given)
    if source.kind == RUN and adapter is None and given is not None and not hub_ids.is_hub_id(str(given)):
        return None
    loaded = load_source(source, device)
    if adapter is None:
        return loaded
    adapter_source = resolve(adapter)
    if adapter_source.kind != ADAPTER:
        raise CheckpointError(f"{adapter}: not a LoRA adapter (expected {adapters.ADAPTER_CONFIG} and {adapters.ADAPTER_WEIGHTS})")
    if source.kind == ADAPTER:
        raise ConfigError(f"{given} already applies an adapter; give its base with --checkpoint to apply {adapter}")
    return with_adapter(loaded, adapter_source, device)


def load_model(
    source: str | os.PathLike | None = None, adapter: str | os.PathLike | None = None, device: str | torch.device = "cpu"
) -> torch.nn.Module:
    """A model ready to sample or evaluate (``nn.Module`` in eval mode, the
    hierarchical contract for event-level models) from a run folder, an exported
    or SkyTNT folder, a hub id ``hf:OWNER/NAME[@REVISION]``, or, with no
    argument, the shipped model; ``adapter`` (a LoRA adapter folder or run) is folded in."""
    from midilm.train.checkpoint import load_for_inference

    return load_for_inference(source, device, adapter=adapter).model
