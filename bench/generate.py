"""Generation speed: events/s of midilm's sampler beside the notebook's cache-free sampler.

``events_per_s`` counts generated events (the prompt excluded) over the whole
sampling time, prompt processing included. The baseline is the design
notebook's way of sampling: its architecture (``seed``) at the notebook's shape
and a full forward over the last 512 tokens for every token (no cache, no
grammar), then temperature and top-k sampling; it samples a few events in the
same process and its tokens/s is compared with ours. The samplers take turns
for ``--rounds`` rounds and medians are reported, so a change of machine load
hits all of them alike.

    python bench/generate.py --arch gpt --preset small --batch 1 --prompt-events 56 --events 256 --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from midilm import vocab
from midilm.model import build_model, count_parameters, preset_config
from midilm.sample import SamplingConfig, sample_events
from midilm.tokenizer import tokenize

PROMPT_FILE = Path(__file__).resolve().parents[1] / "tests" / "data" / "golden" / "bach_bwv1.6.mid"


def prompt_rows(n_events: int) -> np.ndarray:
    """BOS and the first ``n_events`` events of a Bach chorale."""
    rows = tokenize(PROMPT_FILE).tokens
    return rows[: 1 + n_events]


NOTEBOOK_WINDOW = 512


def measure(model: torch.nn.Module, batch: int, start: np.ndarray, events: int, *, seed: int = 0) -> dict:
    config = SamplingConfig(num_samples=batch, events=events, min_events=events, seed=seed, threads=torch.get_num_threads())
    result = sample_events(model, config, start)
    generated = sum(result.generated_events)
    return {
        "events_per_s": generated / result.seconds,
        "tokens_per_s": generated * vocab.EVENT_LEN / result.seconds,
        "seconds": result.seconds,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="gpt", help="comma-separated architectures")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch", type=int, default=1, help="samples generated together")
    parser.add_argument("--prompt-events", type=int, default=56)
    parser.add_argument("--events", type=int, default=256, help="events generated per sample")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--rounds", type=int, default=3, help="turns each sampler takes; medians are reported")
    parser.add_argument(
        "--baseline-events", type=int, default=4, help="events the cache-free notebook sampler generates per round (it is slow); 0 skips it"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = prompt_rows(args.prompt_events)
    samplers: dict[str, tuple[torch.nn.Module, int, int]] = {}
    if args.baseline_events:
        torch.manual_seed(0)
        samplers["notebook"] = (build_model(preset_config("seed", "small")), 1, args.baseline_events)
    for arch in args.arch.split(","):
        torch.manual_seed(0)
        samplers[arch] = (build_model(preset_config(arch, args.preset)), args.batch, args.events)
    runs: dict[str, list[dict]] = {name: [] for name in samplers}
    for round_ in range(args.rounds):
        for name, (model, batch, events) in samplers.items():
            if name == "notebook":
                runs[name].append(measure_notebook(model, start, events, seed=round_))
            else:
                runs[name].append(measure(model, batch, start, events, seed=round_))
    medians = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    for name, (model, batch, events) in samplers.items():
        if name == "notebook":
            continue
        line = {
            "arch": name,
            "preset": args.preset,
            "params": count_parameters(model),
            "batch": batch,
            "prompt_events": args.prompt_events,
            "events": events,
            "threads": args.threads,
            "rounds": args.rounds,
            **{k: round(v, 2) for k, v in medians[name].items()},
        }
        if "notebook" in medians:
            line["notebook_tokens_per_s"] = round(medians["notebook"]["tokens_per_s"], 2)
            line["ratio_vs_notebook"] = round(medians[name]["tokens_per_s"] / medians["notebook"]["tokens_per_s"], 1)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
