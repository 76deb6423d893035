"""``midilm evaluate``: likelihood, music statistics, syntax and memorization of a trained model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from midilm.config import add_dataclass_arguments, apply_arguments
from midilm.evaluate.config import EvaluateConfig

HELP = """Measure a trained model on a token store: nats per token and per event and bits per second of music on a split;
and for generated samples: syntax errors, music statistics against the split's files (Yang & Lerch), and the longest
run of events copied from the training split. Writes evaluation.json, report.md and plots (see docs/evaluation.md).

examples:
  midilm evaluate --checkpoint runs/gpt
  midilm evaluate --checkpoint runs/gpt/best --data STORE --split val --samples 32 --events 1024 --out eval/gpt
  midilm evaluate --checkpoint model.safetensors --data STORE --no-likelihood --samples 64
  midilm evaluate --checkpoint hf:skytnt/midi-model-tv2o-medium --data STORE --split test
  midilm evaluate --checkpoint runs/antic --task accompany --pieces 40 --samples 8     (a chorale voice given the others)
  midilm evaluate --checkpoint runs/antic --task infill --samples 8                   (four bars given the rest)
"""

SAMPLING_PREFIX = "sampling_"
SAMPLING_SKIP = ("num_samples", "events", "seconds")
"""Sampling options that --samples and --events replace."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from midilm.sample.config import SamplingConfig

    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="MODEL",
        help="run folder (its best, else last, checkpoint), LoRA run, checkpoint folder, weights file, exported or SkyTNT folder, or hf:OWNER/NAME",
    )
    parser.add_argument("--lora-adapter", metavar="DIR", help="fold this LoRA adapter (peft format) into the model")
    parser.add_argument("--data", metavar="STORE", help="token store to evaluate on (default: the store the run was trained on)")
    parser.add_argument("--train-data", metavar="STORE", help="store whose train split the memorization check searches (default: --data)")
    parser.add_argument("--out", metavar="DIR", help="folder for evaluation.json, report.md and plots (default: RUN/eval-SPLIT)")
    add_dataclass_arguments(parser.add_argument_group("evaluation"), EvaluateConfig)
    add_dataclass_arguments(parser.add_argument_group("sampling"), SamplingConfig, skip=SAMPLING_SKIP, dest_prefix=SAMPLING_PREFIX)


def run_folder(checkpoint: str) -> Path:
    """The folder results go to by default: a run folder (never inside a
    checkpoint folder, which the next save replaces), a model folder, or for a
    hub id ``evaluations/OWNER--NAME``."""
    from midilm.hub.hub_ids import is_hub_id, parse_hub_id
    from midilm.train.checkpoint import META_FILE, WEIGHTS_FILE

    if is_hub_id(checkpoint):
        return Path("evaluations") / parse_hub_id(checkpoint).repo.replace("/", "--")
    path = Path(checkpoint)
    folder = path if path.is_dir() else path.parent
    return folder.parent if (folder / WEIGHTS_FILE).is_file() or (folder / META_FILE).is_file() else folder


def default_store(checkpoint: str) -> str:
    """The store a checkpoint's run was trained on."""
    from midilm.errors import ConfigError
    from midilm.hub.sources import recorded_run

    run = recorded_run(checkpoint)
    store = run.data.store if run is not None else ""
    if not store or not Path(store).exists():
        raise ConfigError(
            f"{checkpoint}: no --data given and the run's own store {store or '(none recorded)'} is not here; pass --data STORE"
        )
    return store


def run(args: argparse.Namespace) -> int:
    from midilm.evaluate.report import write_outputs
    from midilm.evaluate.run import run_evaluation
    from midilm.sample.config import SamplingConfig

    checkpoint = args.checkpoint
    config = apply_arguments(EvaluateConfig(), args)
    config.validate()
    sampling = apply_arguments(SamplingConfig(), args, dest_prefix=SAMPLING_PREFIX)
    store = args.data or default_store(checkpoint)
    if config.task != "continue":
        from midilm.evaluate.around_report import evaluate_task

        out = Path(args.out) if args.out else run_folder(checkpoint) / f"eval-{config.task}-{config.split}"
        result, files = evaluate_task(checkpoint, store, config, sampling, out)
        print(task_summary(result))
        print(f"wrote {files['report']} and {files['json'].name}")
        return 0
    out = Path(args.out) if args.out else run_folder(checkpoint) / f"eval-{config.split}"
    evaluation = run_evaluation(checkpoint, store, config, sampling=sampling, train_store=args.train_data, adapter=args.lora_adapter)
    files = write_outputs(evaluation, out)
    print(summary(evaluation.result))
    print(f"wrote {files['report']} and {files['json'].name}")
    return 0


def summary(result: dict[str, Any]) -> str:
    """A few lines for the terminal; the report has the rest."""
    lines = []
    if "likelihood" in result:
        lik = result["likelihood"]
        lines.append(
            f"likelihood on {lik['split']} ({lik['files']} files, {lik['seconds']:.0f} s): {lik['loss']:.4f} nats/token, "
            f"{lik['nats_per_event']:.3f} nats/event, {lik['bits_per_second']:.1f} bits/s"
        )
    if "syntax" in result:
        syntax, memo = result["syntax"], result["memorization"]
        lines.append(f"samples: {result['samples']['count']}, syntax errors {syntax['invalid_rows']}/{syntax['rows']} rows")
        overlaps = [f"{name} {v['generated_oa']:.2f}" for name, v in result["music"].items() if "skipped" not in v]
        if overlaps:
            lines.append("overlapping area, generated intra-set vs inter-set: " + ", ".join(overlaps))
        lines.append(
            f"memorization: longest run shared with the train split {memo['longest']} events (held-out files: {memo['reference_longest']})"
        )
    return "\n".join(lines)


def task_summary(result: dict[str, Any]) -> str:
    """One line per procedure of an accompany/infill evaluation."""
    lines = [f"{result['task']} on {result['split']}: {result['cases']} held-out parts from {result['files']} files"]
    for name, figures in result["procedures"].items():
        lines.append(f"  {name:13s} {figures['nats_per_event']:.3f} nats per held-out event")
    return "\n".join(lines)
