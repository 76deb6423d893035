"""Training-step throughput of midilm's architectures, measured side by side.

Each step is the real training step (forward, cross-entropy ignoring PAD,
backward, gradient clipping at 1.0, AdamW lr 3e-4 weight decay 0.01) on
random but grammatical token windows. The architectures measured in one run
take their steps in turn (round-robin), so a change in machine load hits all
of them alike; each prints one JSON line with the median tokens/s after
warm-up and, with ``--baseline``, its ratio to the baseline's.

Windows hold ``--window-events`` events for every arch (8 tokens each), so
tokens/s compare across architectures.

    python bench/train.py --arch gpt --baseline seed --preset small --batch 16 --window-events 64 --steps 10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from midilm import vocab
from midilm.model import ModelConfig, build_model, count_parameters, flops_per_token, preset_config


def random_events(rng: np.random.Generator, n_events: int) -> np.ndarray:
    """A BOS row then ``n_events - 1`` grammatical events, 9 in 10 of them notes."""
    ranges = vocab.slot_ranges()  # (event type, slot, [first, last + 1))
    note = vocab.EVENT_NAMES.index("note")
    kinds = np.where(rng.random(n_events) < 0.9, note, rng.integers(0, len(vocab.EVENT_NAMES), n_events))
    low, high = ranges[kinds, :, 0], ranges[kinds, :, 1]
    events = (low + rng.random(low.shape) * (high - low)).astype(np.int64)
    events[0] = vocab.PAD
    events[0, 0] = vocab.BOS
    return events


def make_batch(
    model: torch.nn.Module, batch: int, window_events: int, rng: np.random.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets as the model's data view gives them: windows of
    ``window_events`` events, targets one step ahead."""
    streams = np.stack([random_events(rng, window_events + 1) for _ in range(batch)])  # (B, n+1, 8)
    inputs, targets = model.training_pair(torch.from_numpy(streams))
    return inputs.to(device), targets.to(device)


class Trainee:
    """One architecture's model, optimizer and fixed batch."""

    def __init__(self, arch: str, args: argparse.Namespace, device: torch.device, config: ModelConfig | None = None) -> None:
        self.arch = arch
        config = config or preset_config(arch, args.preset)
        torch.manual_seed(args.seed)
        self.model = build_model(config).to(device).train()
        self.params = count_parameters(self.model)
        if args.window_events > self.model.config.context_events:
            raise SystemExit(
                f"--window-events {args.window_events}: {arch} preset {args.preset} holds {self.model.config.context_events} events"
            )
        self.flops_per_token = flops_per_token(self.model.config, args.window_events)
        self.step_fn = torch.compile(self.model, backend=getattr(args, "compile_backend", "inductor")) if args.compile else self.model
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=3e-4, weight_decay=0.01)
        self.inputs, self.targets = make_batch(self.model, args.batch, args.window_events, np.random.default_rng(args.seed), device)
        self.tokens_per_step = self.targets.numel()
        self.seconds: list[float] = []

    def step(self, autocast: contextlib.AbstractContextManager, device: torch.device) -> float:
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        with autocast:
            logits = self.step_fn(self.inputs, self.targets)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), self.targets.reshape(-1), ignore_index=vocab.PAD)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="gpt", help="architectures, comma-separated (seed, gpt, hier)")
    parser.add_argument("--baseline", default=None, help="an architecture measured alongside; every line gets its ratio to it")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--window-events", type=int, default=64, help="events per window (512 tokens of a flat model)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per architecture, after the warm-up")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (allocation, compilation)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak TFLOP/s, to report model FLOPs utilisation")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    archs = list(dict.fromkeys(([args.baseline] if args.baseline else []) + args.arch.split(",")))
    trainees = [Trainee(arch, args, device) for arch in archs]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()
    for round_index in range(args.warmup + args.steps):
        for trainee in trainees:
            seconds = trainee.step(autocast, device)
            if round_index >= args.warmup:
                trainee.seconds.append(seconds)
    rates = {t.arch: t.tokens_per_step / statistics.median(t.seconds) for t in trainees}
    for trainee in trainees:
        line = {
            "arch": trainee.arch,
            "preset": args.preset,
            "params": trainee.params,
            "batch": args.batch,
            "window_events": args.window_events,
            "steps": args.steps,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
            "threads": torch.get_num_threads(),
            "bf16": args.bf16,
            "compile": args.compile,
            "step_seconds_median": round(statistics.median(trainee.seconds), 4),
            "train_tokens_per_s": round(rates[trainee.arch], 1),
        }
        if args.baseline:
            line["baseline"] = args.baseline
            line["ratio_vs_baseline"] = round(rates[trainee.arch] / rates[args.baseline], 3)
        if args.peak_tflops:
            line["mfu"] = round(rates[trainee.arch] * trainee.flops_per_token / (args.peak_tflops * 1e12), 4)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
