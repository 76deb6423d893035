"""LoRA adapters in peft's file format: ``adapter_config.json`` and ``adapter_model.safetensors``.

peft and SkyTNT's ``train.py`` write these two files; midilm reads them (no peft
needed) and writes them so peft reads midilm's. Adapter keys name the adapted
layers (``net.layers.0.self_attn.q_proj.lora_A.weight``; peft's own
``save_pretrained`` prefixes ``base_model.model.``). The scaling is
``lora_alpha / r`` (``/ sqrt(r)`` with ``use_rslora``), each layer's rank read
from its tensors.

midilm's LoRA runs also record, in the weights file's metadata, the run config
(whose ``init`` names the base by path or hub id and ``init_sha256`` its content)
and the checkpoint's meta, so an adapter applied to another base is refused.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from midilm.errors import CheckpointError
from midilm.hub import hub_ids
from midilm.hub.files import read_json_object
from midilm.model.lora import LoRALinear, adapter_state_dict, linear_layers, merged_weight
from midilm.train.checkpoint import ADAPTER_WEIGHTS_FILE as ADAPTER_WEIGHTS
from midilm.train.checkpoint import CONFIG_KEY, META_FILE, META_KEY, STATE_FILE, write_atomically
from midilm.train.config import RunConfig

ADAPTER_CONFIG = "adapter_config.json"
PEFT_PREFIX = "base_model.model."
UNSUPPORTED: dict[str, Any] = {
    "use_dora": False,
    "bias": "none",
    "fan_in_fan_out": False,
    "alpha_pattern": {},
    "modules_to_save": None,
    "layer_replication": None,
}
"""peft settings midilm reads only at these values (what plain LoRA means); others are refused by name."""


@dataclass
class AdapterSettings:
    """The settings of one adapter that midilm writes into ``adapter_config.json``."""

    rank: int
    alpha: float
    targets: list[str]
    dropout: float = 0.0
    base: str = ""
    """The base model by path or hub id (peft's ``base_model_name_or_path``)."""
    revision: str | None = None


@dataclass
class Adapter:
    """An adapter read from disk: its layers' ``(A, B)`` tensors and scaling rule."""

    folder: Path
    alpha: float
    rslora: bool
    base: str
    tensors: dict[str, tuple[torch.Tensor, torch.Tensor]]
    metadata: dict[str, str] = field(default_factory=dict)

    def scaling(self, rank: int) -> float:
        return self.alpha / (math.sqrt(rank) if self.rslora else rank)


def is_adapter_folder(path: Path) -> bool:
    return (path / ADAPTER_CONFIG).is_file() and (path / ADAPTER_WEIGHTS).is_file()


def peft_config(settings: AdapterSettings) -> dict[str, Any]:
    """``adapter_config.json`` as peft's ``LoraConfig`` reads it."""
    return {
        "peft_type": "LORA",
        "task_type": None,
        "base_model_name_or_path": settings.base,
        "r": settings.rank,
        "lora_alpha": settings.alpha,
        "lora_dropout": settings.dropout,
        "target_modules": sorted(settings.targets),
        "use_rslora": False,
        "init_lora_weights": True,
        "inference_mode": True,
        "revision": settings.revision,
        "rank_pattern": {},
        "layers_to_transform": None,
        "layers_pattern": None,
        **UNSUPPORTED,
    }


def write_adapter(folder: Path, model: nn.Module, settings: AdapterSettings, metadata: dict[str, str] | None = None) -> None:
    """The adapter of ``model`` (wrapped by :func:`midilm.model.lora.add_adapters`) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ADAPTER_CONFIG).write_text(json.dumps(peft_config(settings), indent=2) + "\n")
    tensors = {key: value.detach().cpu().contiguous() for key, value in adapter_state_dict(model).items()}
    save_file(tensors, str(folder / ADAPTER_WEIGHTS), metadata={"format": "pt", **(metadata or {})})


def read_adapter(folder: Path) -> Adapter:
    """An adapter folder, checked: plain LoRA, and every key an ``A`` or ``B`` of a named layer."""
    config_path, weights = folder / ADAPTER_CONFIG, folder / ADAPTER_WEIGHTS
    config = read_json_object(config_path, "adapter config")
    if config.get("peft_type", "LORA") != "LORA":
        raise CheckpointError(f"{config_path}: not a LoRA adapter config (peft_type {config.get('peft_type')!r})")
    for key, plain in UNSUPPORTED.items():
        if config.get(key, plain) not in (plain, None, {}, []):
            raise CheckpointError(f"{config_path}: {key} {config[key]!r} is not supported (midilm applies plain LoRA)")
    alpha = config.get("lora_alpha")
    if not isinstance(alpha, (int, float)) or alpha <= 0:
        raise CheckpointError(f"{config_path}: lora_alpha must be a positive number, got {alpha!r}")
    try:
        with safe_open(str(weights), framework="pt") as handle:
            metadata = handle.metadata() or {}
            raw = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (safe_open has no items())
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{weights}: not a readable safetensors file: {exc}") from exc
    return Adapter(
        folder,
        float(alpha),
        bool(config.get("use_rslora", False)),
        str(config.get("base_model_name_or_path") or ""),
        _pairs(raw, weights),
        metadata,
    )


def _pairs(raw: dict[str, torch.Tensor], weights: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{layer: (A, B)}`` from adapter keys, peft's prefix removed."""
    halves: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in raw.items():
        name = key.removeprefix(PEFT_PREFIX)
        for part in ("lora_A", "lora_B"):
            if name.endswith(f".{part}.weight"):
                halves.setdefault(name[: -len(f".{part}.weight")], {})[part] = tensor
                break
        else:
            raise CheckpointError(f"{weights}: {key} is not a LoRA A or B weight")
    if not halves:
        raise CheckpointError(f"{weights}: holds no adapter weights")
    pairs = {}
    for layer, parts in halves.items():
        if set(parts) != {"lora_A", "lora_B"}:
            raise CheckpointError(f"{weights}: {layer} has {', '.join(sorted(parts))} but not both lora_A and lora_B")
        a, b = parts["lora_A"], parts["lora_B"]
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1]:
            raise CheckpointError(
                f"{weights}: {layer} has lora_A {tuple(a.shape)} and lora_B {tuple(b.shape)}, which do not make a rank-r update"
            )
        pairs[layer] = (a, b)
    return pairs


def merge_into(model: nn.Module, adapter: Adapter) -> None:
    """Fold the adapter into the matching linear layers of ``model``, in place."""
    layers = linear_layers(model)
    for name, (a, b) in adapter.tensors.items():
        layer = layers.get(name)
        if layer is None:
            raise CheckpointError(f"{adapter.folder}: adapts {name}, which is not a linear layer of this model (another architecture?)")
        if (b.shape[0], a.shape[1]) != tuple(layer.weight.shape):
            raise CheckpointError(
                f"{adapter.folder}: {name} update {b.shape[0]}x{a.shape[1]} does not fit the layer's {tuple(layer.weight.shape)}"
            )
        with torch.no_grad():
            layer.weight.copy_(
                merged_weight(layer.weight, a.to(layer.weight.device), b.to(layer.weight.device), adapter.scaling(a.shape[0]))
            )


def load_into_wrapped(model: nn.Module, adapter: Adapter) -> None:
    """Set the ``A`` and ``B`` of a model wrapped for training from an adapter (resume)."""
    wrapped = {name: module for name, module in model.named_modules() if isinstance(module, LoRALinear)}
    if set(wrapped) != set(adapter.tensors):
        missing, extra = sorted(set(wrapped) - set(adapter.tensors)), sorted(set(adapter.tensors) - set(wrapped))
        raise CheckpointError(f"{adapter.folder}: adapts other layers than this run (missing {missing[:3]}, unexpected {extra[:3]})")
    with torch.no_grad():
        for name, (a, b) in adapter.tensors.items():
            module = wrapped[name]
            if module.lora_A.weight.shape != a.shape or module.lora_B.weight.shape != b.shape:
                raise CheckpointError(
                    f"{adapter.folder}: {name} has rank {a.shape[0]}, this run's adapters have rank {module.lora_A.weight.shape[0]}"
                )
            module.lora_A.weight.copy_(a)
            module.lora_B.weight.copy_(b)


def peft_base_name(init: str) -> tuple[str, str | None]:
    """peft's ``base_model_name_or_path`` and ``revision`` for a base named as midilm names it."""
    if hub_ids.is_hub_id(init):
        hub_id = hub_ids.parse_hub_id(init)
        return hub_id.repo, hub_id.revision
    return init, None


def save_adapter_checkpoint(folder: Path, model: nn.Module, run: RunConfig, meta: dict[str, Any], state: dict[str, Any] | None) -> None:
    """A LoRA run's checkpoint: the adapter in peft's format (the run config and
    meta in its metadata), ``meta.json`` and, for resumable ones, the training state."""
    base, revision = peft_base_name(run.init)
    targets = sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, LoRALinear)})
    settings = AdapterSettings(run.train.lora, run.train.lora_alpha, targets, run.train.lora_dropout, base, revision)

    def write(tmp: Path) -> None:
        write_adapter(tmp, model, settings, metadata={CONFIG_KEY: run.to_json(), META_KEY: json.dumps(meta)})
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
        if state is not None:
            torch.save(state, tmp / STATE_FILE)

    write_atomically(folder, write)
