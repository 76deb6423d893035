"""``midilm export``: a trained model in a form other programs run."""

from __future__ import annotations

import argparse
from pathlib import Path

FORMATS = ("onnx",)

HELP = """Export a model for running elsewhere.

  --format onnx   a self-contained folder of ONNX graphs (weights inside, float32) and model.json, which
                  `midilm generate --checkpoint DIR`, the app and midilm.generate sample with ONNX Runtime and
                  without torch (pip install 'midilm[onnx]'); DAWs and browsers run the same graphs

examples:
  midilm export runs/gpt --format onnx --out exports/gpt-onnx
  midilm export --format onnx --weights int8 --out exports/default     (the shipped model, 8-bit weights)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint", nargs="?", metavar="RUN_OR_FILE", help="run folder, checkpoint folder or weights file (default: the shipped model)"
    )
    parser.add_argument("--format", choices=FORMATS, required=True, help="what to write")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write (created; files of the same names are replaced)")
    parser.add_argument(
        "--weights",
        choices=("full", "int8"),
        default="full",
        help="onnx: float32 weights in standard operators (full), or 8-bit weights in ONNX Runtime's MatMulNBits, about 2x faster on one CPU thread (int8)",
    )


def run(args: argparse.Namespace) -> int:
    import json

    from midilm.cli.generate import default_checkpoint
    from midilm.model.onnx_export import export_onnx
    from midilm.train import load_for_inference

    checkpoint = Path(args.checkpoint) if args.checkpoint else default_checkpoint()
    loaded = load_for_inference(checkpoint, "cpu")
    written = export_onnx(
        loaded.model, json.loads(loaded.run.to_json()), {**loaded.meta, "exported_from": str(loaded.source)}, Path(args.out)
    )
    size_mb = sum(path.stat().st_size for path in written) / 2**20
    print(f"{loaded.run.model.arch} model from {loaded.source} -> {args.out} ({', '.join(p.name for p in written)}; {size_mb:.1f} MB)")
    print(f"generate with: midilm generate --checkpoint {args.out}")
    return 0
