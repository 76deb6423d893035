"""Sampling speed of a model of SkyTNT's published tv2o-medium shape (random weights): midilm beside SkyTNT's own generate.

    python bench/skytnt_generate.py --batch 1,8 --events 32 --rounds 3 \\
        [--reference /path/to/SkyTNT/midi-model --reference-python /path/to/venv-with-transformers/bin/python]

The model (233M parameters: 12 layers of width 1024, a 3-layer token decoder)
is written once in SkyTNT's layout. midilm loads it with ``midilm.load_model``
and samples with its grammar-constrained, KV-cached sampler through three
decoders: ``onnx`` with int8 weights (what ``midilm generate`` uses on a CPU),
``eager`` with int8 weights and ``eager`` with the float32 weights (the
reference's arithmetic). Each is set up (ONNX export, int8 copy) in a short
warm-up call before timing; its seconds are printed. The reference loads the same folder with
``MIDIModel.from_pretrained`` and runs ``MIDIModel.generate`` in a child process
whose Python has transformers and peft (they are never imported into midilm),
in float32. Each sample gets exactly ``--events`` events: midilm forbids the end
token (``min_events``), the reference's sampled end tokens are replaced by a note
event. Both continue the same prompt (BOS and the first ``--prompt-events``
events of a chorale) with temperature 1, top-p 0.94, top-k 20, on ``--threads``
threads; the samplers take turns for ``--rounds`` rounds and medians are
reported. events/s counts generated events (all samples) over the whole call,
prompt included.
"""

from __future__ import annotations

import sys

sys.path.pop(0)  # this folder's tokenize.py would shadow the standard library's tokenize module

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import midilm  # noqa: E402
from midilm.hub.skytnt_layout import write_folder  # noqa: E402
from midilm.model import ModelConfig, build_model, count_parameters  # noqa: E402
from midilm.model.skytnt import PUBLISHED_SHAPES  # noqa: E402
from midilm.sample import SamplingConfig, sample_events  # noqa: E402

PROMPT_FILE = Path(__file__).resolve().parents[1] / "tests" / "data" / "golden" / "bach_bwv1.6.mid"

REFERENCE = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, torch
from midi_model import MIDIModel
folder, threads = sys.argv[2], int(sys.argv[3])
torch.set_num_threads(threads)
model = MIDIModel.from_pretrained(folder).eval()
tokenizer = model.tokenizer
sample = model.sample_top_p_k

def without_end(probs, p, k, generator=None):  # every sample runs to max_len, as midilm's min_events does
    tokens = sample(probs, p, k, generator=generator)
    return torch.where(tokens == tokenizer.eos_id, torch.full_like(tokens, tokenizer.event_ids["note"]), tokens)

model.sample_top_p_k = without_end
print("ready", flush=True)
for line in sys.stdin:
    prompt, batch, events, seed = json.loads(line)
    prompt = np.array(prompt, dtype=np.int64)
    began = time.perf_counter()
    out = model.generate(prompt, batch_size=batch, max_len=len(prompt) + events, temp=1.0, top_p=0.94, top_k=20,
                         generator=torch.Generator().manual_seed(seed))
    seconds = time.perf_counter() - began
    print(json.dumps([seconds, int(out.shape[0] * (out.shape[1] - len(prompt)))]), flush=True)
"""


class Reference:
    """SkyTNT's generate in a child process that keeps the model loaded between rounds."""

    def __init__(self, python: str, code_dir: str, folder: Path, threads: int) -> None:
        self.process = subprocess.Popen(
            [python, "-c", REFERENCE, code_dir, str(folder), str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        if self.process.stdout.readline().strip() != "ready":
            sys.exit("the reference did not start (see its error above)")

    def measure(self, prompt: np.ndarray, batch: int, events: int, seed: int) -> float:
        self.process.stdin.write(json.dumps([prompt.tolist(), batch, events, seed]) + "\n")
        self.process.stdin.flush()
        seconds, generated = json.loads(self.process.stdout.readline())
        return generated / seconds

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


SAMPLERS = {"midilm onnx int8": ("onnx", "int8"), "midilm eager int8": ("eager", "int8"), "midilm eager float32": ("eager", "full")}
"""midilm's samplers: (decoder, weights) of :class:`SamplingConfig`; the first is ``midilm generate``'s default on a CPU."""


def measure(model: torch.nn.Module, sampler: str, prompt: np.ndarray, batch: int, events: int, threads: int, seed: int) -> float:
    decoder, weights = SAMPLERS[sampler]
    config = SamplingConfig(
        num_samples=batch, events=events, min_events=events, seed=seed, threads=threads, decoder=decoder, weights=weights
    )
    result = sample_events(model, config, prompt)
    return sum(result.generated_events) / result.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", default="1,8", help="comma-separated batch sizes (default: 1,8)")
    parser.add_argument("--events", type=int, default=32, help="events generated per sample (default: 32)")
    parser.add_argument("--prompt-events", type=int, default=16, help="events of the prompt after BOS (default: 16)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of both (default: 2)")
    parser.add_argument("--rounds", type=int, default=3, help="turns each sampler takes; medians are reported (default: 3)")
    parser.add_argument("--reference", help="a checkout of SkyTNT/midi-model (its midi_model.py)")
    parser.add_argument("--reference-python", help="a Python with torch, transformers and peft for the reference (default: this one)")
    args = parser.parse_args()
    torch.manual_seed(0)
    prompt = midilm.tokenize(PROMPT_FILE).tokens[: 1 + args.prompt_events]
    with tempfile.TemporaryDirectory(prefix="midilm-skytnt-medium-") as tmp:
        folder = Path(tmp) / "tv2o-medium-random"
        write_folder(folder, build_model(ModelConfig(arch="skytnt", dropout=0.0, **PUBLISHED_SHAPES["tv2o-medium"])), True, torch.float32)
        model = midilm.load_model(folder)
        setup_s = {}
        for name in SAMPLERS:  # the decoder is made once per model (ONNX export, int8 copy), as in `midilm generate`
            began = time.perf_counter()
            measure(model, name, prompt, 1, 1, args.threads, 0)
            setup_s[name] = round(time.perf_counter() - began, 2)
        reference = Reference(args.reference_python or sys.executable, args.reference, folder, args.threads) if args.reference else None
        for batch in (int(b) for b in args.batch.split(",")):
            rates: dict[str, list[float]] = {name: [] for name in [*SAMPLERS, *(["SkyTNT generate"] if reference else [])]}
            for seed in range(args.rounds):
                for name in SAMPLERS:
                    rates[name].append(measure(model, name, prompt, batch, args.events, args.threads, seed))
                if reference:
                    rates["SkyTNT generate"].append(reference.measure(prompt, batch, args.events, seed))
            medians = {name: statistics.median(r) for name, r in rates.items()}
            for name, rate in medians.items():
                line = {"sampler": name, "params": count_parameters(model), "batch": batch, "events": args.events, "threads": args.threads}
                line.update(events_per_s=round(rate, 2), rounds=args.rounds)
                if "SkyTNT generate" in medians:
                    line["vs_skytnt"] = round(rate / medians["SkyTNT generate"], 2)
                print(json.dumps(line), flush=True)
        print(json.dumps({"setup_and_first_event_s": setup_s}))
        if reference:
            reference.close()


if __name__ == "__main__":
    main()
