"""SkyTNT's checkpoint layout: read it as a ``skytnt`` model, and write it.

A SkyTNT folder (what ``MIDIModel.save_pretrained`` writes, the layout of its
Hub repositories) holds ``config.json`` (``MIDIModelConfig``: ``net_config`` and
``net_token_config``, two LLaMA configs, and ``tokenizer``) and
``model.safetensors`` with keys ``net.*``, ``net_token.*`` and ``lm_head.weight``.
SkyTNT's older releases are a Lightning ``.ckpt`` whose ``state_dict`` has the
same keys, beside a ``config.json``. The ``skytnt`` architecture has the same
module names, so the weights load as they are.

Every size, epsilon and rotary setting comes from the config. What midilm does
not implement (tokenizer v1, rope scaling, biases, other activations) is
refused with the setting named, never approximated.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from midilm import vocab
from midilm.errors import CheckpointError, ConfigError
from midilm.hub.files import read_json_object
from midilm.model.config import ModelConfig
from midilm.model.skytnt import StackShape

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
LIGHTNING_SUFFIX = ".ckpt"
MODEL_TYPE = "midi_model"
DERIVED_BUFFER = re.compile(r".*\.rotary_emb\.inv_freq$")
"""Rotary frequency tables that older transformers saved with the weights; midilm derives them from the config."""
LLAMA_DEFAULTS: dict[str, Any] = {
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "attention_dropout": 0.0,
    "hidden_act": "silu",
    "attention_bias": False,
    "mlp_bias": False,
    "rope_scaling": None,
    "head_dim": None,
    "num_key_value_heads": None,
    "pad_token_id": None,
}
"""``LlamaConfig``'s defaults for the fields midilm reads, so a config that leaves one out means what it means to SkyTNT's code."""


@dataclass
class SkyTNTCheckpoint:
    """What a SkyTNT folder describes: the model config, whether its tokens are
    optimised (``optimise_midi``), and the file that holds the weights."""

    config: ModelConfig
    optimise_midi: bool
    weights: Path
    dtype: str


def is_skytnt_config(data: Any) -> bool:
    return isinstance(data, dict) and "net_config" in data and "net_token_config" in data


def locate(path: Path) -> SkyTNTCheckpoint:
    """Read a SkyTNT folder, or a Lightning ``.ckpt`` with ``config.json`` beside it."""
    folder = path.parent if path.is_file() else path
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise CheckpointError(f"{path}: a SkyTNT checkpoint needs its {CONFIG_FILE} beside the weights")
    data = read_json_object(config_path, "SkyTNT config")
    if not is_skytnt_config(data):
        raise CheckpointError(f"{config_path}: not a SkyTNT MIDIModel config (no net_config and net_token_config)")
    config, optimise = model_config(data, str(config_path))
    return SkyTNTCheckpoint(config, optimise, weights_file(path), str(data.get("dtype") or data.get("torch_dtype") or "float32"))


def weights_file(path: Path) -> Path:
    """``model.safetensors`` of a folder, else its one Lightning ``.ckpt``; a file names itself."""
    if path.is_file():
        return path
    if (path / WEIGHTS_FILE).is_file():
        return path / WEIGHTS_FILE
    lightning = sorted(path.glob(f"*{LIGHTNING_SUFFIX}"))
    if len(lightning) == 1:
        return lightning[0]
    if lightning:
        names = ", ".join(p.name for p in lightning)
        raise CheckpointError(f"{path}: several Lightning checkpoints ({names}); name the one to load")
    raise CheckpointError(f"{path}: no {WEIGHTS_FILE} or Lightning {LIGHTNING_SUFFIX} beside {CONFIG_FILE}")


def vocabulary_fields() -> dict[str, Any]:
    """The v2 vocabulary as SkyTNT's tokenizer config spells it."""
    return {
        "vocab_size": vocab.VOCAB_SIZE,
        "pad_id": vocab.PAD,
        "bos_id": vocab.BOS,
        "eos_id": vocab.EOS,
        "max_token_seq": vocab.EVENT_LEN,
        "events": {name: list(params) for name, params in vocab.EVENT_PARAMS.items()},
        "event_parameters": dict(vocab.PARAM_SIZES),
    }


def check_tokenizer(tokenizer: Any, where: str) -> bool:
    """Refuse a tokenizer other than v2 with midilm's vocabulary; return ``optimise_midi``."""
    if not isinstance(tokenizer, dict):
        raise CheckpointError(f"{where}: tokenizer: expected an object with version and optimise_midi")
    version = tokenizer.get("version")
    if version != "v2":
        raise CheckpointError(
            f"{where}: tokenizer version {version!r}: midilm reads SkyTNT's v2 tokens only (v1 models use another vocabulary; "
            "use a tv2 model such as hf:skytnt/midi-model-tv2o-medium)"
        )
    for key, value in vocabulary_fields().items():
        if key in tokenizer and tokenizer[key] != value:
            raise CheckpointError(f"{where}: tokenizer {key} {tokenizer[key]!r} differs from the v2 vocabulary's {value!r}")
    optimise = tokenizer.get("optimise_midi")
    if not isinstance(optimise, bool):
        raise CheckpointError(f"{where}: tokenizer optimise_midi must be true or false, got {optimise!r}")
    return optimise


def _llama(data: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    """One LLaMA config with defaults filled in, refusing what midilm does not implement."""
    llama = data.get(name)
    if not isinstance(llama, dict):
        raise CheckpointError(f"{where}: {name} must be an object")
    merged = {**LLAMA_DEFAULTS, **llama}
    rope = merged.get("rope_parameters")  # transformers 5 moves rope_theta and rope_scaling here
    if isinstance(rope, dict):
        merged["rope_theta"] = rope.get("rope_theta", merged["rope_theta"])
        merged["rope_scaling"] = None if rope.get("rope_type", "default") == "default" else rope
    scaling = merged["rope_scaling"]
    if scaling is not None and (scaling.get("rope_type") or scaling.get("type")) != "default":
        raise CheckpointError(f"{where}: {name}.rope_scaling {scaling!r}: midilm implements plain rotary positions only")
    unsupported = {"hidden_act": "silu", "attention_bias": False, "mlp_bias": False}
    for key, supported in unsupported.items():
        if merged[key] != supported:
            raise CheckpointError(f"{where}: {name}.{key} {merged[key]!r}: midilm implements LLaMA with {key} {supported!r}")
    if merged.get("vocab_size", vocab.VOCAB_SIZE) != vocab.VOCAB_SIZE:
        raise CheckpointError(f"{where}: {name}.vocab_size {merged['vocab_size']} is not the v2 vocabulary's {vocab.VOCAB_SIZE}")
    if merged["pad_token_id"] not in (None, vocab.PAD):
        raise CheckpointError(f"{where}: {name}.pad_token_id {merged['pad_token_id']} is not the v2 PAD id {vocab.PAD}")
    for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size", "max_position_embeddings"):
        if not isinstance(merged.get(key), int) or merged[key] < 1:
            raise CheckpointError(f"{where}: {name}.{key} must be a positive integer, got {merged.get(key)!r}")
    return merged


def model_config(data: dict[str, Any], where: str) -> tuple[ModelConfig, bool]:
    """The ``skytnt`` model config and ``optimise_midi`` of a SkyTNT ``config.json``."""
    optimise = check_tokenizer(data.get("tokenizer"), where)
    net, token = _llama(data, "net_config", where), _llama(data, "net_token_config", where)
    if token["hidden_size"] != net["hidden_size"]:
        raise CheckpointError(
            f"{where}: net_token_config.hidden_size {token['hidden_size']} differs from net_config's {net['hidden_size']}"
        )
    for key in ("rms_norm_eps", "attention_dropout"):
        if token[key] != net[key]:
            raise CheckpointError(f"{where}: {key} differs between net_config ({net[key]}) and net_token_config ({token[key]})")
    try:
        config = ModelConfig(
            arch="skytnt",
            d_model=net["hidden_size"],
            n_heads=net["num_attention_heads"],
            n_layers=net["num_hidden_layers"],
            d_ff=net["intermediate_size"],
            context_events=net["max_position_embeddings"],
            dropout=float(net["attention_dropout"]),
            vocab_size=vocab.VOCAB_SIZE,
            rope_base=float(net["rope_theta"]),
            token_layers=token["num_hidden_layers"],
            token_heads=token["num_attention_heads"],
            token_d_ff=token["intermediate_size"],
            head_dim=net["head_dim"] or 0,
            kv_heads=net["num_key_value_heads"] or 0,
            token_head_dim=token["head_dim"] or 0,
            token_kv_heads=token["num_key_value_heads"] or 0,
            norm_eps=float(net["rms_norm_eps"]),
            token_rope_base=float(token["rope_theta"]),
        ).resolved()
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"{where}: {exc}") from exc
    return config, optimise


def read_state_dict(weights: Path) -> dict[str, torch.Tensor]:
    """The tensors of ``model.safetensors`` or of a Lightning checkpoint's ``state_dict``,
    without the rotary tables older transformers stored."""
    if weights.suffix == LIGHTNING_SUFFIX:
        try:
            blob = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for a damaged or unsafe file
            raise CheckpointError(f"{weights}: not a Lightning checkpoint that loads with weights_only=True ({exc})") from exc
        state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
        if not isinstance(state, dict):
            raise CheckpointError(f"{weights}: expected a dict with a state_dict, got {type(blob).__name__}")
    else:
        try:
            state = load_file(str(weights))
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{weights}: not a readable safetensors file: {exc}") from exc
    return {key: value for key, value in state.items() if not DERIVED_BUFFER.match(key)}


def load_weights(model: torch.nn.Module, weights: Path) -> None:
    """Load SkyTNT weights into a ``skytnt`` model (any float dtype; converted to the model's)."""
    state = read_state_dict(weights)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{weights}: weights do not fit the config (missing {missing[:5]}, unexpected {unexpected[:5]})")
    wrong = [
        f"{key} {tuple(state[key].shape)} != {tuple(value.shape)}" for key, value in expected.items() if state[key].shape != value.shape
    ]
    if wrong:
        raise CheckpointError(f"{weights}: weight shapes do not fit the config: {'; '.join(wrong[:5])}")
    model.load_state_dict(state)


def llama_config(config: ModelConfig, *, token_level: bool) -> dict[str, Any]:
    """One stack of a ``skytnt`` config as a ``LlamaConfig`` dict."""
    c = config.resolved()
    shape = StackShape.of(c, token_level=token_level)
    return {
        "model_type": "llama",
        "vocab_size": c.vocab_size,
        "hidden_size": c.d_model,
        "intermediate_size": shape.d_ff,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads,
        "head_dim": shape.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": c.context_events,
        "rms_norm_eps": c.norm_eps,
        "rope_theta": shape.rope_base,
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": c.dropout,
        "mlp_bias": False,
        "pad_token_id": vocab.PAD,
        "use_cache": False,
    }


def skytnt_config(config: ModelConfig, optimise_midi: bool, dtype: torch.dtype) -> dict[str, Any]:
    """A SkyTNT ``config.json`` for a ``skytnt`` model (what ``MIDIModelConfig`` reads)."""
    if config.arch != "skytnt":
        raise ConfigError(f"SkyTNT layout: holds skytnt models only, not {config.arch} (export it in the hub format)")
    return {
        "architectures": ["MIDIModel"],
        "model_type": MODEL_TYPE,
        "dtype": str(dtype).removeprefix("torch."),
        "n_embd": config.d_model,
        "net_config": llama_config(config, token_level=False),
        "net_token_config": llama_config(config, token_level=True),
        "tokenizer": {"version": "v2", "optimise_midi": optimise_midi, **vocabulary_fields()},
    }


def write_folder(folder: Path, model: torch.nn.Module, optimise_midi: bool, dtype: torch.dtype) -> None:
    """``config.json`` and ``model.safetensors`` in SkyTNT's layout, which SkyTNT's own code loads."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(json.dumps(skytnt_config(model.config, optimise_midi, dtype), indent=2) + "\n")
    tensors = {key: value.detach().to("cpu", dtype).contiguous() for key, value in model.state_dict().items()}
    save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
