"""``midilm train``: train or fine-tune a model on a token store, or resume a run."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from midilm.config import add_dataclass_arguments, apply_arguments, from_dict, given_arguments, read_json, to_dict
from midilm.errors import ConfigError
from midilm.train.config import FINE_TUNE_LR, LORA_LR, TrainConfig

HELP = f"""Train a model on a token store (see `midilm prepare`), fine-tune one with --init, or continue a run with --resume.

examples:
  midilm train --data STORE --out runs/gpt --arch gpt --preset small
  midilm train --resume runs/gpt --max-steps 5000
  midilm train --data MY_STORE --out runs/ft --init runs/gpt            (fine-tune; lr defaults to {FINE_TUNE_LR})
  midilm train --data MY_STORE --out runs/lora --init hf:skytnt/midi-model-tv2o-medium --lora 16   (LoRA; lr {LORA_LR})
  torchrun --nproc_per_node 4 -m midilm train --data STORE --out runs/big --preset base
"""

MODEL_PREFIX = "model_"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from midilm.model import ModelConfig
    from midilm.model.config import PRESETS
    from midilm.model.registry import ARCHS

    parser.add_argument(
        "--data", metavar="STORE", help="token store to train on (default: the bundled corpus's store, prepared by `midilm prepare`)"
    )
    parser.add_argument("--out", metavar="RUN", help="run folder to create (default: runs/ARCH-PRESET-TIME)")
    parser.add_argument(
        "--resume",
        metavar="RUN",
        help="continue this run from its last checkpoint with its own settings (only --max-steps/--max-minutes may change)",
    )
    parser.add_argument(
        "--init",
        metavar="CHECKPOINT",
        help="start from this model: run folder, checkpoint folder, .safetensors, a notebook best_model_lm.pt, an exported or "
        "SkyTNT folder, or hf:OWNER/NAME",
    )
    parser.add_argument("--arch", choices=ARCHS, help="model architecture (default: gpt)")
    parser.add_argument("--preset", choices=tuple(PRESETS), help="model size preset (default: small)")
    parser.add_argument("--config", metavar="FILE", help='JSON file with "model" and/or "train" sections; command-line options override it')
    model = parser.add_argument_group("model (override the preset)")
    add_dataclass_arguments(model, ModelConfig, skip=("arch", "vocab_size"), dest_prefix=MODEL_PREFIX, default_text="the preset's")
    add_dataclass_arguments(parser.add_argument_group("training"), TrainConfig)


def _configs(args: argparse.Namespace):
    from midilm.model import ModelConfig, preset_config

    file_data = _config_file(args)
    if file_data:
        unknown = set(file_data) - {"model", "train"}
        if unknown:
            raise ConfigError(f"{args.config}: unknown section(s) {', '.join(sorted(unknown))}; expected 'model' and 'train'")
    from midilm.model import architecture
    from midilm.model.config import upgrade_model_dict
    from midilm.train.config import upgrade_train_dict

    model_file = dict(upgrade_model_dict(file_data.get("model", {})))
    arch = args.arch or model_file.pop("arch", "gpt")
    preset = args.preset or model_file.pop("preset", "small")
    model_config = preset_config(arch, preset)
    if model_file:
        model_config = from_dict(ModelConfig, {**to_dict(model_config), **model_file}, source=f"{args.config}:model")
    model_config = apply_arguments(model_config, args, dest_prefix=MODEL_PREFIX)
    train_file = upgrade_train_dict(file_data.get("train", {}), architecture(model_config.arch).positions_per_event)
    train_config = from_dict(TrainConfig, train_file, source=f"{args.config}:train")
    train_config = apply_arguments(train_config, args)
    return model_config, train_config, arch, preset


def run(args: argparse.Namespace) -> int:
    from midilm.model import ModelConfig
    from midilm.train import resume_run, start_run
    from midilm.train.loop import fine_tune_lr

    if args.resume:
        extra = set(given_arguments(args, TrainConfig)) - {"max_steps", "max_minutes"}
        extra |= {name for name in ("data", "out", "init", "arch", "preset", "config") if getattr(args, name)}
        extra |= set(given_arguments(args, ModelConfig, dest_prefix=MODEL_PREFIX))
        if extra:
            raise ConfigError(
                f"--resume takes every setting from the run; only --max-steps and --max-minutes may change (got {', '.join(sorted(extra))})"
            )
        result = resume_run(args.resume, max_steps=args.max_steps, max_minutes=args.max_minutes)
    else:
        model_config, train_config, arch, preset = _configs(args)
        if args.init:
            if args.arch or args.preset or given_arguments(args, ModelConfig, dest_prefix=MODEL_PREFIX):
                raise ConfigError("--init takes the model from the checkpoint; drop --arch, --preset and model options")
            train_config = fine_tune_lr(train_config, lr_given=args.lr is not None or "lr" in _config_file(args).get("train", {}))
        data = args.data or _default_store()
        out = args.out or f"runs/{arch}-{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
        result = start_run(data, out, model_config, train_config, init=args.init)
    return 130 if result.stop_reason == "interrupted" else 0


def _config_file(args: argparse.Namespace) -> dict:
    """The --config file's sections (empty without one)."""
    if not args.config:
        return {}
    data = read_json(args.config, "training config")
    if not isinstance(data, dict):
        raise ConfigError(f"{args.config}: expected a JSON object with 'model' and/or 'train' sections")
    return data


def _default_store() -> str:
    from midilm.data import default_store_path

    path = default_store_path()
    if not Path(path).exists():
        raise ConfigError(f"no --data given and the bundled corpus's store {path} does not exist yet: run `midilm prepare` first")
    return str(path)
