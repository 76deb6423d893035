"""GPU figures in one run: bf16 training throughput and model FLOPs utilisation, and sampling speed.

For ``gpt`` and ``hier`` at the ``base`` and ``large`` presets and for the
shape of SkyTNT's ``tv2o-medium`` (hidden 1024, built with ``hier``'s classes,
:data:`midilm.model.config.SKYTNT_MEDIUM`): the real training step (bench/train.py's:
forward, cross-entropy, backward, clipping, AdamW) on windows of each model's
whole context (1024 positions: 128 events of ``gpt``, 1024 of ``hier``), batch
32, under bf16 autocast, with and
without ``torch.compile``, as tokens/s and MFU (model FLOPs per token from the
architecture's ``flops_per_token`` against ``--peak-tflops``, 989 by default:
the dense bf16 peak of an H100/H200 SXM); then sampling events/s with the
eager cached decoder (the GPU path) at batch 1, 8 and 64 after a 56-event prompt.
Every figure is a JSON line on standard output and in ``--out``.

    python3 bench/gpu.py --out gpu.jsonl                 (about 5 minutes on one H200)
    python3 bench/gpu.py --device cpu --quick --out q.jsonl   (seconds: tiny shapes, to check the script)

Only torch, numpy, safetensors and tqdm of midilm's dependencies are needed on this path.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(sys.path.pop(0))  # this folder's tokenize.py would shadow the standard library's tokenize module

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from midilm import vocab  # noqa: E402
from midilm.model import ModelConfig, build_model, preset_config  # noqa: E402
from midilm.model.config import SKYTNT_MEDIUM  # noqa: E402
from midilm.sample import SamplingConfig  # noqa: E402
from midilm.sample.sampler import EventSampler  # noqa: E402

PROMPT_EVENTS = 56


def _bench_module(name: str) -> Any:
    """A sibling script as a module (the folder is off ``sys.path``, see above)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_bench = _bench_module("train")


def shapes(quick: bool) -> dict[str, ModelConfig]:
    """Name -> config of every model measured."""
    if quick:
        small = {"d_model": 64, "n_heads": 4, "n_layers": 2, "context_events": 16, "dropout": 0.0}
        return {
            "gpt-tiny": ModelConfig(arch="gpt", **small),
            "hier-tiny": ModelConfig(arch="hier", **small),
            "skytnt-medium-shape-tiny": ModelConfig(
                **{**SKYTNT_MEDIUM, "d_model": 64, "d_ff": 128, "token_d_ff": 64, "n_layers": 2, "token_layers": 1, "context_events": 16}
            ),
        }
    configs = {f"{arch}-{preset}": preset_config(arch, preset) for arch in ("gpt", "hier") for preset in ("base", "large")}
    configs["skytnt-medium-shape"] = ModelConfig(**SKYTNT_MEDIUM)
    for config in configs.values():
        config.dropout = 0.0
    return configs


def train_figures(name: str, config: ModelConfig, args: argparse.Namespace, device: torch.device, compiled: bool) -> dict:
    """Median training tokens/s and MFU of one model, with or without torch.compile."""
    window_events = config.context_events  # every preset's context costs about the same per window (docs/models.md)
    trainee_args = argparse.Namespace(
        preset=None, seed=0, window_events=window_events, compile=compiled, compile_backend=args.compile_backend, batch=args.batch
    )
    trainee = train_bench.Trainee(config.arch, trainee_args, device, config=config)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)
    began = time.perf_counter()
    for _ in range(args.warmup):
        trainee.step(autocast, device)
    warmup_seconds = time.perf_counter() - began
    seconds = [trainee.step(autocast, device) for _ in range(args.steps)]
    tokens_per_s = trainee.tokens_per_step / statistics.median(seconds)
    line = {
        "figure": "train",
        "model": name,
        "arch": config.arch,
        "params": trainee.params,
        "compile": compiled,
        "batch": args.batch,
        "window_events": window_events,
        "tokens_per_step": trainee.tokens_per_step,
        "warmup_seconds": round(warmup_seconds, 1),
        "step_seconds_median": round(statistics.median(seconds), 4),
        "train_tokens_per_s": round(tokens_per_s, 1),
        "flops_per_token": round(trainee.flops_per_token),
        "peak_tflops": args.peak_tflops,
        "mfu": round(tokens_per_s * trainee.flops_per_token / (args.peak_tflops * 1e12), 4),
    }
    del trainee
    return line


def sample_figures(name: str, config: ModelConfig, args: argparse.Namespace, device: torch.device, batch: int) -> dict:
    """Events/s of the eager cached decoder for ``batch`` samples after a prompt of random grammatical events."""
    torch.manual_seed(0)
    model = build_model(config).to(device).eval()
    start = train_bench.random_events(np.random.default_rng(0), 1 + PROMPT_EVENTS).astype(vocab.TOKEN_DTYPE)
    sampling = SamplingConfig(num_samples=batch, events=args.sample_events, min_events=args.sample_events, decoder="eager", threads=0)
    list(EventSampler(model, SamplingConfig(**{**vars(sampling), "events": 2, "min_events": 2}), start).steps())  # warm-up
    began = time.perf_counter()
    sampler = EventSampler(model, sampling, start)
    for _ in sampler.steps():
        pass
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - began
    generated = sum(sampler.result().generated_events)
    return {
        "figure": "sample",
        "model": name,
        "arch": config.arch,
        "decoder": "eager",
        "batch": batch,
        "prompt_events": PROMPT_EVENTS,
        "events": args.sample_events,
        "seconds": round(seconds, 3),
        "events_per_s": round(generated / seconds, 1),
        "events_per_s_per_sample": round(generated / seconds / batch, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="file that receives the JSON lines")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny shapes and few steps: checks that the script runs (CPU tests)")
    parser.add_argument("--batch", type=int, default=32, help="training windows per step")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps, after the warm-up")
    parser.add_argument("--warmup", type=int, default=3, help="untimed training steps (compilation, allocation)")
    parser.add_argument("--sample-events", type=int, default=64, help="events generated per sample")
    parser.add_argument("--sample-batches", default="1,8,64")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU (H100/H200 SXM: 989)")
    parser.add_argument("--compile-backend", default="inductor")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.steps, args.warmup, args.sample_events = 2, 1, 1, 3
        args.compile_backend = "eager" if args.device == "cpu" else args.compile_backend
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    began = time.perf_counter()
    header = {
        "figure": "setup",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
        "torch": torch.__version__,
        "quick": args.quick,
        "skytnt_shape": "hier classes (the skytnt architecture is not registered here)",
    }
    with Path(args.out).open("w") as out:

        def emit(line: dict) -> None:
            line["elapsed_s"] = round(time.perf_counter() - began, 1)
            text = json.dumps(line)
            print(text, flush=True)
            out.write(text + "\n")
            out.flush()

        emit(header)
        for name, config in shapes(args.quick).items():
            for compiled in (False, True):
                try:
                    emit(train_figures(name, config, args, device, compiled))
                except torch.cuda.OutOfMemoryError:
                    emit({"figure": "train", "model": name, "compile": compiled, "batch": args.batch, "error": "out of GPU memory"})
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            for batch in (int(b) for b in args.sample_batches.split(",")):
                emit(sample_figures(name, config, args, device, batch))


if __name__ == "__main__":
    main()
