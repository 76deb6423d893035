"""``midilm export``: a model as a folder that travels, with its model card.

Formats are a table (name -> ``module:function``), so another format plugs in
with one line: the function takes the output folder and the
:class:`ExportRequest` with the loaded model, and returns the files it wrote.

- ``hub`` (default): midilm's Hub layout, ``config.json`` + ``model.safetensors``
  (16-bit by default) + ``README.md``; a LoRA run without ``--merge`` exports its
  adapter alone in peft's format (``adapter_config.json`` +
  ``adapter_model.safetensors``) with its card.
- ``skytnt``: SkyTNT's layout, for ``skytnt`` models, which SkyTNT's own code loads.
"""

from __future__ import annotations

import importlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from midilm.errors import CheckpointError, ConfigError
from midilm.hub import adapters, exported, skytnt_layout
from midilm.hub.card import CardFacts, model_card, store_facts
from midilm.hub.sources import ADAPTER, Source, resolve
from midilm.train.checkpoint import META_FILE, LoadedModel, load_for_inference

FORMATS: dict[str, str] = {
    "hub": "midilm.hub.export:write_hub",
    "skytnt": "midilm.hub.export:write_skytnt",
}
"""Export format -> ``module:function(out, request) -> list[Path]``."""
DTYPES: dict[str, torch.dtype] = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
EVALUATION_FILE = "evaluation.json"


@dataclass
class ExportRequest:
    """What to export and what the model card says beyond the model's own records."""

    source: str | None
    """A run, model folder, adapter or hub id (None: the shipped model)."""
    format: str = "hub"
    dtype: str = "bfloat16"
    merge: bool = False
    """Fold the LoRA adapter (of a LoRA run, or ``adapter``) into full weights."""
    adapter: str | None = None
    evaluations: list[Path] = field(default_factory=list)
    """``evaluation.json`` files of ``midilm evaluate`` (default: the run's ``eval-*`` folders)."""
    data: str | None = None
    """Where the training store is now (default: the path the run recorded)."""
    licence: str = "other"
    name: str | None = None
    notes: Path | None = None
    resolved: Source | None = None
    loaded: LoadedModel | None = None


def export_model(request: ExportRequest, out: str | Path) -> list[Path]:
    """Write the model (or adapter) of ``request`` to ``out``; returns the files written."""
    if request.format not in FORMATS:
        raise ConfigError(f"export format: unknown format {request.format!r}; choose one of {', '.join(FORMATS)}")
    if request.dtype not in DTYPES:
        raise ConfigError(f"export dtype: choose one of {', '.join(DTYPES)}, got {request.dtype!r}")
    if request.adapter is not None and not request.merge:
        raise ConfigError("export: --lora-adapter is folded into its base with --merge; to export the adapter alone, export its folder")
    request.resolved = resolve(request.source)
    # an adapter is always loaded on its base: that checks it, and gives its records
    request.loaded = load_for_inference(request.resolved.name if request.source is not None else None, adapter=request.adapter)
    module_name, function = FORMATS[request.format].split(":")
    return getattr(importlib.import_module(module_name), function)(Path(out), request)


def write_hub(out: Path, request: ExportRequest) -> list[Path]:
    """midilm's Hub layout, or for an unmerged LoRA run its adapter in peft's format."""
    if request.resolved.kind == ADAPTER and not request.merge:
        return _write_adapter(out, request)
    dtype = DTYPES[request.dtype]
    evaluations = _evaluations(request)
    weights = exported.write_exported(out, request.loaded, dtype, _figures(evaluations))
    card = _write_card(out, request, weights, evaluations)
    return [out / exported.CONFIG_FILE, weights, card]


def write_skytnt(out: Path, request: ExportRequest) -> list[Path]:
    """SkyTNT's layout (``skytnt`` models only), with midilm's model card."""
    if request.resolved.kind == ADAPTER and not request.merge:
        raise ConfigError("export --format skytnt: a LoRA adapter is exported in peft's format (--format hub) or folded in with --merge")
    loaded = request.loaded
    optimise = bool((loaded.run.data.tokenizer or {}).get("optimise", True))
    skytnt_layout.write_folder(out, loaded.model, optimise, DTYPES[request.dtype])
    weights = out / skytnt_layout.WEIGHTS_FILE
    card = _write_card(out, request, weights, _evaluations(request))
    return [out / skytnt_layout.CONFIG_FILE, weights, card]


def _write_adapter(out: Path, request: ExportRequest) -> list[Path]:
    """A LoRA run's adapter as it is (peft's two files), with a card."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in (adapters.ADAPTER_CONFIG, adapters.ADAPTER_WEIGHTS):
        shutil.copyfile(request.resolved.path / name, out / name)
        written.append(out / name)
    adapter = adapters.read_adapter(out)
    adapter_parameters = sum(a.numel() + b.numel() for a, b in adapter.tensors.values())
    card = _write_card(out, request, out / adapters.ADAPTER_WEIGHTS, _evaluations(request), adapter_parameters=adapter_parameters)
    return [*written, card]


def _run_folder(source: Source) -> Path:
    """Where ``midilm evaluate`` put this model's evaluations by default: a checkpoint folder's run, else the folder itself."""
    folder = source.path if source.path.is_dir() else source.path.parent
    return folder.parent if (folder / META_FILE).is_file() else folder


def _evaluations(request: ExportRequest) -> list[dict[str, Any]]:
    """The evaluations to report: the files given, else those in the run's ``eval-*`` folders."""
    paths = request.evaluations or sorted(_run_folder(request.resolved).glob(f"eval-*/{EVALUATION_FILE}"))
    found = []
    for path in paths:
        try:
            found.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: cannot read the evaluation: {exc}") from exc
    return found


def _figures(evaluations: list[dict[str, Any]]) -> dict[str, Any]:
    """Per split, the headline likelihood figures (for ``config.json``)."""
    keys = ("nats_per_event", "loss", "bits_per_second", "files", "events")
    return {e["likelihood"]["split"]: {k: e["likelihood"].get(k) for k in keys} for e in evaluations if "likelihood" in e}


def _write_card(out: Path, request: ExportRequest, weights: Path, evaluations: list[dict[str, Any]], adapter_parameters: int = 0) -> Path:
    from midilm.model import count_parameters

    loaded = request.loaded
    run = loaded.run
    facts = CardFacts(
        title=request.name or out.name,
        run=run,
        meta=loaded.meta,
        parameters=count_parameters(loaded.model),
        weights_file=weights.name,
        weights_dtype=_stored_dtype(weights),
        weights_bytes=weights.stat().st_size,
        source=str(request.source) if request.source is not None else "the model shipped with midilm",
        data=store_facts(request.data or run.data.store, run.data.identity),
        evaluations=evaluations,
        licence=request.licence,
        folder_name=out.name,
        notes=request.notes.read_text() if request.notes else "",
        adapter_parameters=adapter_parameters,
    )
    card = out / exported.CARD_FILE
    card.write_text(model_card(facts))
    return card


SAFETENSORS_DTYPES = {"BF16": "bfloat16", "F16": "float16", "F32": "float32", "F64": "float64"}


def _stored_dtype(weights: Path) -> str:
    """The dtypes of a safetensors file's tensors, as torch names them."""
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as handle:
        dtypes = {handle.get_slice(key).get_dtype() for key in handle.keys()}  # noqa: SIM118 (safe_open has no items())
    return ", ".join(sorted(SAFETENSORS_DTYPES.get(d, d) for d in dtypes))
