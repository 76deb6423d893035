"""``midilm generate``: music from a trained model, as MIDI, tokens, WAV and piano roll."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from midilm.config import add_dataclass_arguments, apply_arguments
from midilm.sample.config import PIECE_SECONDS, Controls, SamplingConfig

HELP = """Generate music with a model: from scratch, from controls (instruments, drums, tempo, time and key signature),
or continuing a MIDI prompt. Every sample is written as MIDI and as its token array, optionally as WAV and piano roll.

A piece stops when the model ends it, at --events new events, or at --seconds of new music (3 minutes unless
set), whichever comes first; each sample's line says which. Without --seed a fresh seed is drawn and printed,
so two runs give different music and any piece can be made again.

examples:
  midilm generate                                   (the bundled default model, one sample)
  midilm generate --checkpoint runs/gpt --num-samples 4 --audio --piano-roll --out samples
  midilm generate --checkpoint hf:skytnt/midi-model-tv2o-medium --instruments piano,violin --bpm 100
  midilm generate --checkpoint runs/lora                     (a LoRA run: its base with the adapter folded in)
  midilm generate --instruments piano,violin --drums standard --bpm 96 --key Dm --time-signature 3/4
  midilm generate --prompt song.mid --prompt-seconds 10 --seconds 30
  midilm generate --seed 1234 --num-samples 4       (the same four pieces on every run on this device)
  midilm generate --allow-instruments piano,drums --no-control-change --max-polyphony 4
"""

UNLIMITED_EVENTS = 1_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        metavar="MODEL",
        help="run folder (its best, else last checkpoint), LoRA run, checkpoint folder, weights file, exported or SkyTNT folder, "
        "a folder of `midilm export --format onnx`, or hf:OWNER/NAME[@REVISION] (default: the model shipped with midilm)",
    )
    parser.add_argument("--lora-adapter", metavar="DIR", help="fold this LoRA adapter (peft format, e.g. SkyTNT's) into the model")
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
    add_dataclass_arguments(parser.add_argument_group("sampling"), SamplingConfig, defaults=command_defaults())
    add_dataclass_arguments(parser.add_argument_group("controls (written as prompt events)"), Controls)


def command_defaults() -> SamplingConfig:
    """Sampling settings before options apply: the config's own, with pieces
    capped at :data:`~midilm.sample.config.PIECE_SECONDS` of new music."""
    return SamplingConfig(seconds=PIECE_SECONDS)


def default_checkpoint() -> Path:
    """The model that ships inside the package (an exported folder), so a fresh install makes music at once."""
    from midilm.hub.sources import shipped_model

    return shipped_model()


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from midilm.sample import sample_events
    from midilm.sample.loading import load_sampling_model
    from midilm.sample.locks import generation_setup
    from midilm.sample.output import write_samples
    from midilm.sample.prompt import load_prompt

    config = apply_arguments(command_defaults(), args)
    if args.seconds and args.events is None:
        config.events = UNLIMITED_EVENTS
    controls = apply_arguments(Controls(), args)
    config.validate()
    loaded = load_sampling_model(args.checkpoint, args.device, adapter=args.lora_adapter)
    prompt = None
    if args.prompt:
        prompt = load_prompt(args.prompt, loaded.run.data.tokenizer, events=args.prompt_events, seconds=args.prompt_seconds)
    setup = generation_setup(config, prompt, controls, loaded.model.config.vocab_size)
    out = Path(args.out or f"samples/{time.strftime('%Y%m%d-%H%M%S')}")
    print(f"seed {config.seed} (sample i uses seed + i; --seed {config.seed} makes these pieces again)", flush=True)
    total = None if config.events == UNLIMITED_EVENTS else config.events
    with tqdm(total=total, unit="event", desc=f"generating {config.num_samples} sample(s)", dynamic_ncols=True) as bar:
        result = sample_events(loaded.model, config, setup.start, on_event=lambda n: bar.update(n - bar.n), constraints=setup.constraints)
    result = setup.finish(result)
    if result.stop_reason == "interrupted":
        print("interrupted: writing what was generated so far")
    settings = {
        "checkpoint": str(loaded.source),
        "arch": loaded.run.model.arch,
        "device": loaded.device,
        "sampling": config,
        "controls": controls,
        "prompt": args.prompt,
    }
    written = write_samples(
        out, result, settings, seed=config.seed, audio=args.audio, piano_roll=args.piano_roll, prefix=args.prefix, prompt=prompt is not None
    )
    for sample in written:
        print(sample.describe(limits(config)))
        for kind, path in sample.files.items():
            if kind not in ("midi", "record"):
                print(f"  {path}")
        for note in sample.notes:
            print(f"  note: {note}")
    print(
        f"{sum(result.generated_events)} events in {result.seconds:.1f} s ({result.events_per_s:.1f} events/s); "
        f"settings and seeds in {out}/{args.prefix}-*.json"
    )
    return 130 if result.stop_reason == "interrupted" else 0


def limits(config: SamplingConfig) -> dict[str, str]:
    """The options behind each limit a piece can reach."""
    return {"events": f"--events {config.events}", "seconds": f"--seconds {config.seconds:g}"}
