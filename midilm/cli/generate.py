"""``midilm generate``: music from a trained model, as MIDI, tokens, WAV and piano roll."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from midilm.config import add_dataclass_arguments, apply_arguments
from midilm.sample.config import Controls, SamplingConfig

HELP = """Generate music with a model: from scratch, from controls (instruments, drums, tempo, time and key signature),
or continuing a MIDI prompt. Every sample is written as MIDI and as its token array, optionally as WAV and piano roll.

examples:
  midilm generate                                   (the bundled default model, one sample)
  midilm generate --checkpoint runs/gpt --num-samples 4 --audio --piano-roll --out samples
  midilm generate --instruments piano,violin --drums standard --bpm 96 --key Dm --time-signature 3/4
  midilm generate --prompt song.mid --prompt-seconds 10 --seconds 30
  midilm generate --allow-instruments piano,drums --no-control-change --max-polyphony 4
"""

UNLIMITED_EVENTS = 1_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        metavar="RUN_OR_FILE",
        help="run folder (its best, else last checkpoint), checkpoint folder or weights file (default: the model shipped with midilm)",
    )
    parser.add_argument("--out", metavar="DIR", help="folder for the samples (default: samples/TIME)")
    parser.add_argument("--prompt", metavar="IN.mid", help="continue this MIDI file (tokenized with the model's tokenizer options)")
    cut = parser.add_mutually_exclusive_group()
    cut.add_argument("--prompt-events", type=int, default=0, metavar="N", help="use the prompt's first N events")
    cut.add_argument(
        "--prompt-seconds", type=float, default=0.0, metavar="S", help="use the prompt's events that start in its first S seconds"
    )
    parser.add_argument("--audio", action="store_true", help="also render a WAV with a General MIDI soundfont")
    parser.add_argument("--piano-roll", action="store_true", help="also draw a piano-roll PNG")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--prefix", default="sample", help="file name prefix (default: sample)")
    add_dataclass_arguments(parser.add_argument_group("sampling"), SamplingConfig)
    add_dataclass_arguments(parser.add_argument_group("controls (written as prompt events)"), Controls)


def default_checkpoint() -> Path:
    """The model that ships inside the package, so a fresh install makes music at once."""
    from importlib.resources import files

    from midilm.errors import CheckpointError

    path = Path(str(files("midilm") / "assets" / "default-model.safetensors"))
    if not path.is_file():
        raise CheckpointError(f"no default model installed at {path}; pass --checkpoint RUN (train one with `midilm train`)")
    return path


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from midilm.runtime import resolve_device
    from midilm.sample import sample_events
    from midilm.sample.locks import generation_setup
    from midilm.sample.output import write_samples
    from midilm.sample.prompt import load_prompt
    from midilm.train import load_for_inference

    config = apply_arguments(SamplingConfig(), args)
    if args.seconds and args.events is None:
        config.events = UNLIMITED_EVENTS
    controls = apply_arguments(Controls(), args)
    config.validate()
    checkpoint = Path(args.checkpoint) if args.checkpoint else default_checkpoint()
    loaded = load_for_inference(checkpoint, resolve_device(args.device))
    prompt = None
    if args.prompt:
        prompt = load_prompt(args.prompt, loaded.run.data.tokenizer, events=args.prompt_events, seconds=args.prompt_seconds)
    setup = generation_setup(config, prompt, controls, loaded.model.config.vocab_size)
    out = Path(args.out or f"samples/{time.strftime('%Y%m%d-%H%M%S')}")
    total = None if config.events == UNLIMITED_EVENTS else config.events
    with tqdm(total=total, unit="event", desc=f"generating {config.num_samples} sample(s)", dynamic_ncols=True) as bar:
        result = sample_events(loaded.model, config, setup.start, on_event=lambda n: bar.update(n - bar.n), constraints=setup.constraints)
    result = setup.finish(result)
    if result.stop_reason == "interrupted":
        print("interrupted: writing what was generated so far")
    settings = {
        "checkpoint": str(loaded.source),
        "arch": loaded.run.model.arch,
        "device": str(next(loaded.model.parameters()).device),
        "sampling": config,
        "controls": controls,
        "prompt": args.prompt,
    }
    written = write_samples(out, result, settings, seed=config.seed, audio=args.audio, piano_roll=args.piano_roll, prefix=args.prefix)
    for files, events in zip(written, result.generated_events, strict=True):
        print(f"{files['midi']}  ({events} events)" + "".join(f"\n  {p}" for k, p in files.items() if k not in ("midi", "record")))
    print(
        f"{sum(result.generated_events)} events in {result.seconds:.1f} s ({result.events_per_s:.1f} events/s); settings in {out}/{args.prefix}-*.json"
    )
    return 130 if result.stop_reason == "interrupted" else 0
