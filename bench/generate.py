"""Generation speed: events/s of midilm's decoders beside the notebook's cache-free sampler, time to the first
note, and the fraction of this machine's limits the sampler reaches.

``events_per_s`` counts generated events (the prompt excluded) over the whole
sampling time, prompt processing included. The baseline is the design
notebook's way of sampling: its architecture (``seed``) at the notebook's shape
and a full forward over the last 512 tokens for every token (no cache, no
grammar), then top-k sampling; it samples a few events in the same process and
its tokens/s is compared with ours. ``first_note_ms`` is the time from the
start of a sampling call (the model loaded) to the first generated note event,
prompt processing included. The samplers take turns for ``--rounds`` rounds
after one warm-up call each (which exports or compiles the fast decoders), and
medians are reported, so a change of machine load hits all of them alike.

The machine's limits are measured in the same run on the same threads: a large
float32 matrix product (FLOP/s) and a large memory copy (bytes copied per
second). Each decoder's work per generated token is counted on its own model
(FLOPs with PyTorch's FLOP counter; weight bytes as every linear layer's weight
read once per call: 4 bytes a weight for float32, 1 for int8).

    python bench/generate.py --arch gpt,hier --preset small --batch 1 --prompt-events 56 --events 256 --decoders eager,onnx,compile
    python bench/generate.py --checkpoint default --decoders eager,onnx --baseline-events 0   (the shipped model)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from midilm import vocab
from midilm.model import ModelConfig, build_model, count_parameters, make_decoder, preset_config
from midilm.model.config import SKYTNT_MEDIUM
from midilm.model.int8 import for_sampling
from midilm.sample import SamplingConfig
from midilm.sample.sampler import EventSampler
from midilm.tokenizer import tokenize

PROMPT_FILE = Path(__file__).resolve().parents[1] / "tests" / "data" / "golden" / "bach_bwv1.6.mid"
NOTEBOOK_WINDOW = 512
NOTE = vocab.EVENT_ID["note"]


def prompt_rows(n_events: int) -> np.ndarray:
    """BOS and the first ``n_events`` events of a Bach chorale."""
    return tokenize(PROMPT_FILE).tokens[: 1 + n_events]


def measure(model: torch.nn.Module, decoder: str, batch: int, start: np.ndarray, events: int, *, seed: int = 0) -> dict:
    """One sampling call: events/s over the whole call and the time to its first note."""
    config = SamplingConfig(
        num_samples=batch, events=events, min_events=events, seed=seed, threads=torch.get_num_threads(), decoder=decoder
    )
    began = time.perf_counter()
    sampler = EventSampler(model, config, start)
    first_note = None
    for rows in sampler.steps():
        if first_note is None and (rows[:, 0] == NOTE).any():
            first_note = time.perf_counter() - began
    seconds = time.perf_counter() - began
    generated = sum(sampler.result().generated_events)
    return {
        "events_per_s": generated / seconds,
        "tokens_per_s": generated * vocab.EVENT_LEN / seconds,
        "seconds": seconds,
        "first_note_ms": 1000 * (first_note if first_note is not None else seconds),
    }


@torch.inference_mode()
def measure_notebook(model: torch.nn.Module, start: np.ndarray, events: int, *, seed: int = 0) -> dict:
    """The notebook's sampler: every token, a full forward over the last 512 tokens."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.as_tensor(start.reshape(1, -1).astype(np.int64))
    began = time.perf_counter()
    for _ in range(events * vocab.EVENT_LEN):
        logits = model(tokens[:, -NOTEBOOK_WINDOW:])[:, -1]  # (1, V)
        top, ids = torch.topk(logits, 20)
        pick = torch.multinomial(torch.softmax(top, -1), 1, generator=generator)
        tokens = torch.cat([tokens, ids.gather(-1, pick)], dim=1)
    seconds = time.perf_counter() - began
    return {"events_per_s": events / seconds, "tokens_per_s": events * vocab.EVENT_LEN / seconds, "seconds": seconds}


class WeightReads:
    """Counts the weight bytes every linear layer of a model reads while active (one read of its weight per call)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.bytes = 0

    def __enter__(self) -> WeightReads:
        linears = [m for m in self.model.modules() if hasattr(m, "weight") and type(m).__name__.endswith("Linear")]
        self.hooks = [m.register_forward_hook(self._count) for m in linears]
        return self

    def __exit__(self, *exc: object) -> None:
        for hook in self.hooks:
            hook.remove()

    def _count(self, module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        self.bytes += module.weight.numel() * module.weight.element_size()


@torch.inference_mode()
def push_events(model: torch.nn.Module, start: np.ndarray, n_events: int, watch: Any) -> int:
    """Prefill the cached decoder with ``start``, then push the chorale's next ``n_events`` events
    inside ``watch``; returns the tokens pushed."""
    decoder = make_decoder(model, 1)
    decoder.prefill(start[None].astype(np.int64))
    rows = prompt_rows(len(start) - 1 + n_events)[len(start) :]
    with watch:
        for token in rows.reshape(-1):
            decoder.push(np.array([token]))
    return rows.size


def work_per_token(model: torch.nn.Module, start: np.ndarray, int8: bool, n_events: int = 16) -> dict:
    """FLOPs (of the float model: PyTorch's counter does not see int8 kernels) and weight bytes
    (8-bit weights when ``int8``) per generated token of the cached decoder, after ``start``."""
    flops = FlopCounterMode(display=False)
    n_tokens = push_events(model, start, n_events, flops)
    counted = for_sampling(model, "int8") if int8 else model
    reads = WeightReads(counted)
    push_events(counted, start, n_events, reads)
    return {"flops_per_token": flops.get_total_flops() / n_tokens, "weight_bytes_per_token": reads.bytes / n_tokens}


def machine_limits(seconds: float = 1.0) -> dict:
    """This machine's float32 matrix-product FLOP/s and memory-copy bytes/s, on torch's threads."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    torch.matmul(a, b)
    runs, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        torch.matmul(a, b)
        runs += 1
    matmul = runs * 2 * 1024**3 / (time.perf_counter() - began)
    source = np.ones(2**28 // 4, dtype=np.float32)  # 256 MiB, beyond caches of most machines
    target = np.empty_like(source)
    np.copyto(target, source)
    runs, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        np.copyto(target, source)
        runs += 1
    copy = runs * source.nbytes / (time.perf_counter() - began)
    return {"matmul_gflop_per_s": matmul / 1e9, "copy_gb_per_s": copy / 1e9}


def load_model(args: argparse.Namespace, arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if args.checkpoint:
        from midilm.cli.generate import default_checkpoint
        from midilm.train import load_for_inference

        return load_for_inference(default_checkpoint() if args.checkpoint == "default" else args.checkpoint).model
    if args.shape == "skytnt-medium":
        return build_model(ModelConfig(**{**SKYTNT_MEDIUM, "dropout": 0.0}))
    return build_model(preset_config(arch, args.preset))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="gpt", help="comma-separated architectures (random weights)")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--shape", choices=("skytnt-medium",), help="a named shape instead of the preset (SkyTNT's tv2o-medium)")
    parser.add_argument("--checkpoint", help="measure this saved model instead ('default': the shipped one)")
    parser.add_argument("--decoders", default="eager,onnx", help="comma-separated: eager, onnx, compile")
    parser.add_argument("--batch", type=int, default=1, help="samples generated together")
    parser.add_argument("--prompt-events", type=int, default=56)
    parser.add_argument("--events", type=int, default=256, help="events generated per sample")
    parser.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads")
    parser.add_argument("--rounds", type=int, default=3, help="turns each sampler takes; medians are reported")
    parser.add_argument(
        "--baseline-events", type=int, default=4, help="events the cache-free notebook sampler generates per round (it is slow); 0 skips it"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = prompt_rows(args.prompt_events)
    limits = machine_limits()
    models = {name: load_model(args, name) for name in (["checkpoint"] if args.checkpoint or args.shape else args.arch.split(","))}
    samplers: dict[tuple[str, str], tuple[torch.nn.Module, int, int]] = {}
    if args.baseline_events:
        torch.manual_seed(0)
        samplers[("notebook", "")] = (build_model(preset_config("seed", "small")), 1, args.baseline_events)
    for name, model in models.items():
        for decoder in args.decoders.split(","):
            samplers[(name, decoder)] = (model, args.batch, args.events)
            measure(model, decoder, args.batch, start, 2)  # warm-up: exports, compiles, first allocations
    runs: dict[tuple[str, str], list[dict]] = {key: [] for key in samplers}
    for round_ in range(args.rounds):
        for (name, decoder), (model, batch, events) in samplers.items():
            if name == "notebook":
                runs[(name, decoder)].append(measure_notebook(model, start, events, seed=round_))
            else:
                runs[(name, decoder)].append(measure(model, decoder, batch, start, events, seed=round_))
    medians = {key: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for key, rs in runs.items()}
    for (name, decoder), (model, batch, events) in samplers.items():
        if name == "notebook":
            continue
        work = work_per_token(model, start, int8=decoder in ("eager", "onnx"))  # both sample with 8-bit weights by default
        median = medians[(name, decoder)]
        line = {
            "model": name if name != "checkpoint" else (args.checkpoint or args.shape),
            "arch": model.config.arch,
            "preset": None if args.checkpoint or args.shape else args.preset,
            "decoder": decoder,
            "params": count_parameters(model),
            "batch": batch,
            "prompt_events": args.prompt_events,
            "events": events,
            "threads": args.threads,
            "rounds": args.rounds,
            **{k: round(v, 2) for k, v in median.items()},
            "flops_per_token": round(work["flops_per_token"]),
            "weight_bytes_per_token": round(work["weight_bytes_per_token"]),
            **{k: round(v, 2) for k, v in limits.items()},
            "fraction_of_matmul_flops": round(work["flops_per_token"] * median["tokens_per_s"] / 1e9 / limits["matmul_gflop_per_s"], 4),
            # a step reads the weights once for the whole batch
            "fraction_of_copy_bandwidth": round(
                work["weight_bytes_per_token"] * median["tokens_per_s"] / batch / 1e9 / limits["copy_gb_per_s"], 4
            ),
        }
        if ("notebook", "") in medians:
            line["notebook_tokens_per_s"] = round(medians[("notebook", "")]["tokens_per_s"], 2)
            line["ratio_vs_notebook"] = round(median["tokens_per_s"] / medians[("notebook", "")]["tokens_per_s"], 1)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
