"""Quality at an equal wall-clock budget: seed, gpt and hier trained on the same store, compared by nats per event.

Each architecture, at about the notebook's parameter count, trains for the same
number of minutes. The runs take turns in slices (train A for a few minutes,
then B, then C, and again), each slice resuming its run exactly where it
stopped, so that a change of machine load over the hour hits all of them alike.
At the end each run's best checkpoint is scored on the validation split with
every token predicted once (``midilm.evaluate.likelihood``), and the curves of
validation nats per event against training minutes are drawn.

    python bench/quality.py --data ~/.cache/midilm/stores/default --out runs/quality --minutes 20
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from midilm.data import TokenStore
from midilm.evaluate.likelihood import likelihood
from midilm.model import count_parameters, preset_config
from midilm.train import TrainConfig, load_for_inference, resume_run, start_run
from midilm.train.runlog import MetricsLog


def per_arch(text: str) -> dict[str, int]:
    """``"gpt=9,hier=128"`` -> ``{"gpt": 9, "hier": 128}``."""
    pairs = (item.split("=") for item in text.split(",") if item)
    return {arch.strip(): int(value) for arch, value in pairs}


def model_config(arch: str, args: argparse.Namespace):
    config = preset_config(arch, "small")
    config.n_layers = args.n_layers.get(arch, config.n_layers)
    return config


def train_config(arch: str, args: argparse.Namespace, minutes: float) -> TrainConfig:
    window = args.window_events[arch]
    return TrainConfig(
        window_events=window,
        stride_events=window // 2,
        batch_size=args.batch,
        eval_every=args.eval_every,
        eval_batches=args.eval_batches,
        max_minutes=minutes,
        max_epochs=1000,
        seed=args.seed,
    )


def val_curve(run: Path) -> tuple[list[float], list[float]]:
    rows = [r for r in MetricsLog(run).rows() if "val_nats_per_event" in r]
    return [r["elapsed_s"] / 60 for r in rows], [r["val_nats_per_event"] for r in rows]


def plot(runs: dict[str, Path], path: Path, minutes: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for arch, run in runs.items():
        x, y = val_curve(run)
        ax.plot(x, y, marker="o", markersize=3, label=arch)
    ax.set_xlabel("training minutes (wall clock, this CPU)")
    ax.set_ylabel("validation nats per event")
    ax.set_title(f"seed vs gpt vs hier at about 8M parameters, {minutes:g} minutes each")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="token store (e.g. the bundled corpus's)")
    parser.add_argument("--out", required=True, help="folder for the runs, the table and the curves")
    parser.add_argument("--archs", default="seed,gpt,hier")
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget of each architecture")
    parser.add_argument("--slice", type=float, default=4.0, help="minutes a run trains before the next one takes its turn")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument(
        "--window-events",
        type=per_arch,
        default="seed=64,gpt=64,hier=128",
        help="events per training window, per arch (64 events = 512 tokens)",
    )
    parser.add_argument(
        "--n-layers",
        type=per_arch,
        default="gpt=9",
        help="layers that differ from the small preset (gpt's SwiGLU blocks are smaller: 9 make the notebook's 8.2M)",
    )
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--eval-batches", type=int, default=16, help="cap of each evaluation during training")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    out = Path(args.out)
    store = TokenStore(args.data)
    archs = args.archs.split(",")
    runs = {arch: out / arch for arch in archs}
    for turn in range(1, math.ceil(args.minutes / args.slice) + 1):
        budget = min(turn * args.slice, args.minutes)
        for arch, run in runs.items():
            print(f"--- {arch}: training up to {budget:g} minutes", flush=True)
            if (run / "config.json").exists():
                resume_run(run, max_minutes=budget)
            else:
                start_run(args.data, run, model_config(arch, args), train_config(arch, args, budget))

    results = {}
    for arch, run in runs.items():
        loaded = load_for_inference(run, "cpu")
        window = loaded.run.train.window_events
        scores = likelihood(loaded.model, store, "val", window, args.batch, torch.device("cpu"))
        steps = [r["step"] for r in MetricsLog(run).rows()]
        results[arch] = {
            "params": count_parameters(loaded.model),
            "window": window,
            "steps": max(steps),
            "best_step": loaded.meta.get("step"),
            "val_nats_per_event": scores["nats_per_event"],
            "val_nats_per_token": scores["loss"],
            "val_bits_per_second": scores["bits_per_second"],
        }
    baseline = results.get("seed", {}).get("val_nats_per_event")
    lines = [
        "| arch | parameters | window | steps | best step | val nats/event | vs seed | val nats/token | val bits/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for arch, r in results.items():
        versus = f"{(r['val_nats_per_event'] / baseline - 1) * 100:+.1f}%" if baseline else ""
        lines.append(
            f"| {arch} | {r['params']:,} | {r['window']} events | {r['steps']} | {r['best_step']} | {r['val_nats_per_event']:.3f} | {versus} "
            f"| {r['val_nats_per_token']:.4f} | {r['val_bits_per_second']:.1f} |"
        )
    table = "\n".join(lines)
    (out / "quality.json").write_text(json.dumps({"settings": vars(args), "results": results}, indent=2))
    (out / "quality.md").write_text(table + "\n")
    plot(runs, out / "quality-curves.png", args.minutes)
    print(table)
    print(f"curves: {out / 'quality-curves.png'}")


if __name__ == "__main__":
    main()
