"""What ``midilm accompany`` and ``midilm infill`` share: the model, sampling and
lock options, the output files, and the run itself."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from midilm.config import add_dataclass_arguments, apply_arguments
from midilm.sample.config import SamplingConfig

SAMPLING_SKIP = ("events", "seconds", "min_events")
"""Set from the song: the piece lasts as long as its input."""
MODES = ("auto", "interleave", "anticipate")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("song", metavar="SONG.mid", help="the MIDI file (or token array .npy) to write around")
    parser.add_argument(
        "--checkpoint",
        metavar="RUN_OR_FILE",
        help="run folder (its best, else last, checkpoint), checkpoint folder or weights file (default: the model shipped with midilm)",
    )
    parser.add_argument("--out", metavar="DIR", help="folder for the pieces (default: samples/TIME)")
    parser.add_argument("--audio", action="store_true", help="also render a WAV with a General MIDI soundfont")
    parser.add_argument("--piano-roll", action="store_true", help="also draw a piano roll: kept notes in grey, new ones in colour")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="auto",
        help="anticipate: the model reads the kept music ahead (models trained with --anticipation); interleave: kept events are "
        "placed when their time comes (any model); auto: anticipate when the model can (default)",
    )
    add_dataclass_arguments(parser.add_argument_group("sampling and locks"), SamplingConfig, skip=SAMPLING_SKIP)


def run_around(args: argparse.Namespace, build: Callable[[Any, SamplingConfig], Any], settings: dict[str, Any], prefix: str) -> int:
    """Load the model, build the task with ``build(song, config)``, sample it and write the pieces."""
    from tqdm.auto import tqdm

    from midilm.cli.generate import default_checkpoint
    from midilm.runtime import resolve_device
    from midilm.sample.around import AroundModel, load_song, write_around
    from midilm.sample.around_files import write_pieces
    from midilm.train import load_for_inference

    config = apply_arguments(SamplingConfig(), args)
    config.validate()
    loaded = load_for_inference(Path(args.checkpoint) if args.checkpoint else default_checkpoint(), resolve_device(args.device))
    around = AroundModel.of(loaded)
    task = build(load_song(args.song, around), config)
    out = Path(args.out or f"samples/{time.strftime('%Y%m%d-%H%M%S')}")
    with tqdm(total=task.budget(), unit="event", desc=f"writing {config.num_samples} piece(s)", dynamic_ncols=True) as bar:
        result = write_around(around, config, task, mode=args.mode, on_event=lambda n: bar.update(n - bar.n))
    if result.generation.stop_reason == "interrupted":
        print("interrupted: writing what was written so far")
    record = {"checkpoint": str(loaded.source), "arch": loaded.run.model.arch, "song": str(args.song), **settings}
    written = write_pieces(out, result, record, seed=config.seed, audio=args.audio, piano_roll=args.piano_roll, prefix=prefix)
    print(f"mode: {result.mode}; new voices: {', '.join(v.describe() for v in result.plan.voices)}")
    for sample, kept in zip(written, result.kept_rows, strict=True):
        extra = "".join(f"\n  {p}" for k, p in sample.files.items() if k not in ("midi", "record"))
        notes = "".join(f"\n  note: {note}" for note in sample.notes)
        print(f"{sample.files['midi']}  ({int(kept.sum())} kept events, {sample.generated_events} new){extra}{notes}")
    generation = result.generation
    print(
        f"{sum(generation.generated_events)} events in {generation.seconds:.1f} s ({generation.events_per_s:.1f} events/s); settings in {out}/{prefix}-*.json"
    )
    return 130 if generation.stop_reason == "interrupted" else 0
