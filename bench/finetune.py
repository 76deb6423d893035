"""Fine-tuning one base on a store two ways for the same wall-clock time: every weight, and LoRA adapters.

    python bench/finetune.py --data STORE --init BASE --minutes 3 --lora 16 --val-windows 256
    python bench/finetune.py --data STORE --skytnt-medium --minutes 2 --device cuda --window-events 256

Each way is ``midilm train --init BASE`` (through ``midilm.start_run``) in a child
process of its own, so that its peak memory is its own: resident memory of the
process, and on a GPU the most memory torch allocated. Both train for
``--minutes``; then the model each leaves (loaded as ``midilm.load_model``
loads a run: the LoRA run as its base with the adapter folded in) and the base
are scored on the same validation windows: laid end to end as ``midilm evaluate``
lays them (every event predicted once), the whole split or ``--val-windows``
of them spread evenly over it. Printed, one JSON line each: the trainable
parameters, tokens/s (input tokens of the steps taken over the training time),
peak memory (before the scoring), the size of the weights a checkpoint holds
(and of the whole resumable ``last/`` folder), and validation nats per event.
``--skytnt-medium`` builds a base of SkyTNT's published
``tv2o-medium`` shape with random weights (its figures of speed and memory are
those of the real model; its nats are not).
"""

from __future__ import annotations

import sys

sys.path.pop(0)  # this folder's tokenize.py would shadow the standard library's tokenize module

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402


def random_medium_base(folder: Path) -> Path:
    """A random ``tv2o-medium``-shaped model written in SkyTNT's layout."""
    import torch

    from midilm.hub.skytnt_layout import write_folder
    from midilm.model import ModelConfig, build_model
    from midilm.model.skytnt import PUBLISHED_SHAPES

    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="skytnt", dropout=0.0, **PUBLISHED_SHAPES["tv2o-medium"]))
    write_folder(folder, model, optimise_midi=True, dtype=torch.bfloat16)
    return folder


def val_nats(model_path: str, args: argparse.Namespace) -> float:
    """Validation nats per event of a model on the windows every arm is scored on (see the module doc)."""
    import torch

    import midilm
    from midilm.data import TokenStore
    from midilm.evaluate.likelihood import tiled_view
    from midilm.runtime import resolve_device
    from midilm.train.batches import eval_batches
    from midilm.train.metrics import evaluate_view

    device = resolve_device(args.device)
    model = midilm.load_model(model_path, device=device)
    view = tiled_view(TokenStore(args.data), "val", model, args.window_events)
    batches = eval_batches(len(view), args.batch, limit=math.ceil(args.val_windows / args.batch) if args.val_windows else 0)
    amp = torch.bfloat16 if device.type == "cuda" else None
    return evaluate_view(model, view, batches, device, amp).result()["nats_per_event"]


def child(args: argparse.Namespace) -> None:
    """One run, then its figures as a JSON line."""
    import torch
    from safetensors import safe_open

    import midilm
    from midilm.train.loop import fine_tune_lr

    lora = args.lora if args.child == "lora" else 0
    train = midilm.TrainConfig(
        max_minutes=args.minutes,
        max_epochs=10**6,
        window_events=args.window_events,
        batch_size=args.batch,
        eval_every=10**9,  # no evaluation but the loop's final one, kept to a batch: the arms are scored after it
        eval_batches=1,
        device=args.device,
        lora=lora,
        log_every=10,
        checkpoint_every=10**9,
    )
    train = fine_tune_lr(dataclasses.replace(train, lr=args.lr or train.lr), lr_given=bool(args.lr))  # as `midilm train --init` does
    result = midilm.start_run(args.data, args.out, None, train, init=args.init)
    rows = [json.loads(line) for line in (Path(args.out) / "metrics.jsonl").read_text().splitlines()]
    last = Path(args.out) / "last"
    weights = next(p for p in last.iterdir() if p.suffix == ".safetensors")
    with safe_open(str(weights), framework="pt") as handle:
        trainable = sum(math.prod(handle.get_slice(key).get_shape()) for key in handle.keys())  # noqa: SIM118
    tokens = result.step * args.batch * args.window_events * 8
    peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    peak_gpu_mb = round(torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_available() else None
    print(
        json.dumps(
            {
                "run": args.child,
                "lora_rank": lora,
                "steps": result.step,
                "trainable_parameters": trainable,
                "tokens_per_s": round(tokens / rows[-1]["elapsed_s"], 1),
                "peak_rss_mb": peak_rss_mb,
                "peak_gpu_mb": peak_gpu_mb,
                "checkpoint_weights_mb": round(weights.stat().st_size / 2**20, 2),
                "checkpoint_last_mb": round(sum(p.stat().st_size for p in last.iterdir()) / 2**20, 2),
                "val_nats_per_event": round(val_nats(args.out, args), 4),
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="token store to fine-tune on (its val split is evaluated)")
    base = parser.add_mutually_exclusive_group(required=True)
    base.add_argument("--init", help="the base: any model midilm loads (run, exported or SkyTNT folder, hub id)")
    base.add_argument("--skytnt-medium", action="store_true", help="a random base of SkyTNT's tv2o-medium shape")
    parser.add_argument("--minutes", type=float, default=3.0, help="training time of each run (default: 3)")
    parser.add_argument("--lora", type=int, default=16, help="LoRA rank (default: 16)")
    parser.add_argument("--window-events", type=int, default=128, help="training window in events (default: 128)")
    parser.add_argument("--batch", type=int, default=16, help="windows per step (default: 16)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--lr", type=float, default=0.0, help="learning rate of both runs (default: midilm's defaults)")
    parser.add_argument("--val-windows", type=int, default=0, help="validation windows scored, spread over the split (default: 0, all)")
    parser.add_argument("--child", choices=("full", "lora"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="midilm-finetune-") as tmp:
        if args.skytnt_medium:
            args.init = str(random_medium_base(Path(tmp) / "tv2o-medium-random"))
        print(json.dumps({"base": args.init, "window_events": args.window_events, "batch": args.batch, "device": args.device}))
        print(json.dumps({"run": "base", "val_nats_per_event": round(val_nats(args.init, args), 4)}), flush=True)
        figures = {}
        for way in ("full", "lora"):
            command = [sys.executable, __file__, "--child", way, "--out", str(Path(tmp) / way), "--data", args.data, "--init", args.init]
            command += ["--minutes", str(args.minutes), "--lora", str(args.lora), "--window-events", str(args.window_events)]
            command += ["--batch", str(args.batch), "--device", args.device, "--lr", str(args.lr), "--val-windows", str(args.val_windows)]
            output = subprocess.run(command, capture_output=True, text=True, check=False)
            if output.returncode:
                sys.exit(f"the {way} run failed:\n{output.stderr[-3000:]}")
            figures[way] = json.loads(output.stdout.strip().splitlines()[-1])
            print(json.dumps(figures[way]), flush=True)
        full, lora = figures["full"], figures["lora"]
        memory = "peak_gpu_mb" if full["peak_gpu_mb"] else "peak_rss_mb"
        ratios = {
            "lora_vs_full_tokens_per_s": round(lora["tokens_per_s"] / full["tokens_per_s"], 2),
            f"lora_vs_full_{memory}": round(lora[memory] / full[memory], 2),
            "lora_vs_full_trainable": round(lora["trainable_parameters"] / full["trainable_parameters"], 4),
            "lora_vs_full_checkpoint_weights": round(lora["checkpoint_weights_mb"] / full["checkpoint_weights_mb"], 4),
        }
        print(json.dumps(ratios))


if __name__ == "__main__":
    main()
