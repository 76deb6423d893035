"""``midilm export``: a model as a folder that travels: the Hub layout with its model card, SkyTNT's layout, or ONNX."""

from __future__ import annotations

import argparse
from pathlib import Path

FORMATS = ("hub", "skytnt", "onnx")

HELP = """Export a model as a folder that travels.

  --format hub     (default) config.json (midilm's config and tokenizer spec), model.safetensors (16-bit by
                   default) and a model card README.md (architecture, parameters, data and licences, training
                   command, validation and test metrics from `midilm evaluate`, intended use, how to load). A LoRA
                   run exports its adapter in peft's format (adapter_config.json, adapter_model.safetensors)
                   unless --merge folds it into full weights.
  --format skytnt  SkyTNT's layout (skytnt models), which SkyTNT's own code loads.
  --format onnx    self-contained ONNX graphs (weights inside) and model.json, which `midilm generate
                   --checkpoint DIR`, the app and midilm.generate sample with ONNX Runtime and without torch
                   (pip install 'midilm[onnx]'); a LoRA run or --lora-adapter is folded in.

examples:
  midilm export runs/gpt --out exports/gpt
  midilm export runs/lora --out exports/lora                  (the adapter alone, a few MB)
  midilm export runs/lora --merge --out exports/tuned          (base and adapter folded into one model)
  midilm export hf:skytnt/midi-model-tv2o-medium --lora-adapter my-lora --merge --out exports/merged
  midilm export runs/gpt --format onnx --out exports/gpt-onnx
  midilm export --format onnx --weights int8 --out exports/default     (the shipped model, 8-bit weights)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        nargs="?",
        metavar="MODEL",
        help="run folder, LoRA run, exported or SkyTNT folder, or hf:OWNER/NAME (default: the shipped model)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write (created; files of the same name are replaced)")
    parser.add_argument(
        "--format", default="hub", choices=FORMATS, help="hub (midilm's Hub layout, the default), skytnt or onnx (see above)"
    )
    parser.add_argument(
        "--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"), help="hub and skytnt: weights dtype (default: bfloat16)"
    )
    parser.add_argument(
        "--weights",
        choices=("full", "int8"),
        default="full",
        help="onnx: float32 weights (full), or 8-bit weights in ONNX Runtime's MatMulNBits, about 2x faster on one CPU thread (int8)",
    )
    parser.add_argument("--merge", action="store_true", help="fold the LoRA adapter (of a LoRA run, or --lora-adapter) into full weights")
    parser.add_argument("--lora-adapter", metavar="DIR", help="a LoRA adapter to fold into MODEL (with --merge)")
    parser.add_argument(
        "--evaluation",
        action="append",
        default=[],
        metavar="FILE",
        help="evaluation.json of `midilm evaluate` for the card (repeatable; default: the run's eval-*/evaluation.json)",
    )
    parser.add_argument(
        "--data", metavar="STORE", help="where the training store is now, for the card's data and licences (default: the recorded path)"
    )
    parser.add_argument(
        "--licence", default="other", help="licence id for the card's header, e.g. apache-2.0 or cc-by-nc-4.0 (default: other)"
    )
    parser.add_argument("--name", help="the card's title (default: the --out folder's name)")
    parser.add_argument("--notes", metavar="FILE.md", help="Markdown added to the card under Notes")


def run(args: argparse.Namespace) -> int:
    if args.format == "onnx":
        return export_onnx_folder(args)
    from midilm.hub.export import ExportRequest, export_model

    request = ExportRequest(
        source=args.source,
        format=args.format,
        dtype=args.dtype,
        merge=args.merge,
        adapter=args.lora_adapter,
        evaluations=[Path(p) for p in args.evaluation],
        data=args.data,
        licence=args.licence,
        name=args.name,
        notes=Path(args.notes) if args.notes else None,
    )
    for path in export_model(request, args.out):
        print(f"{path}  ({path.stat().st_size / 2**20:.1f} MB)" if path.stat().st_size > 2**20 else str(path))
    return 0


def export_onnx_folder(args: argparse.Namespace) -> int:
    import json

    from midilm.model.onnx_export import export_onnx
    from midilm.train import load_for_inference

    loaded = load_for_inference(args.source, "cpu", adapter=args.lora_adapter)
    written = export_onnx(
        loaded.model,
        json.loads(loaded.run.to_json()),
        {**loaded.meta, "exported_from": str(loaded.source)},
        Path(args.out),
        weights=args.weights,
    )
    size_mb = sum(path.stat().st_size for path in written) / 2**20
    print(f"{loaded.run.model.arch} model from {loaded.source} -> {args.out} ({', '.join(p.name for p in written)}; {size_mb:.1f} MB)")
    print(f"generate with: midilm generate --checkpoint {args.out}")
    return 0
