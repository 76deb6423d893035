"""``midilm tokenize``: MIDI files -> token arrays (``.npy``), one process, no torch."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from midilm.config import add_dataclass_arguments, apply_arguments
from midilm.tokenizer.api import MAX_FILE_BYTES
from midilm.tokenizer.options import TokenizerOptions

HELP = """Tokenize MIDI files into v2 token arrays [n_events, 8] (uint16 .npy).

With one input file and an --out ending in .npy, that file is written. Otherwise --out is a folder:
an input file X.mid becomes OUT/X.npy, and an input folder is searched recursively for .mid/.midi
files (any letter case) whose layout is mirrored under OUT (a/x.mid becomes OUT/a/x.npy).
A file that cannot be read (not MIDI, damaged, over the size limit, too large for the memory) is
reported on stderr and skipped, and the exit code is then 1; a file with no notes is written and named
on stderr, since such a file is rarely what was meant.

examples:
  midilm tokenize song.mid --out song.npy
  midilm tokenize midi_folder --out tokens/
  midilm tokenize a.mid b.mid --out tokens/ --no-optimise
"""

MIDI_SUFFIXES = (".mid", ".midi")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IN", help="MIDI files and folders")
    parser.add_argument("--out", required=True, metavar="OUT", help="output .npy file (one input file) or folder")
    parser.add_argument("--verbose", action="store_true", help="print what tokenization dropped and noticed in each file")
    parser.add_argument(
        "--max-mb",
        type=float,
        default=MAX_FILE_BYTES / 2**20,
        metavar="MB",
        help="refuse MIDI files larger than this many MiB (default: %(default)g)",
    )
    add_dataclass_arguments(parser.add_argument_group("tokenizer options"), TokenizerOptions)


def midi_files(folder: Path) -> list[Path]:
    """MIDI files under ``folder``, recursively, in a stable order."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())


def plan(inputs: list[str], out: str) -> list[tuple[Path, Path]]:
    """(input file, output .npy) pairs for the command line's inputs and --out."""
    from midilm.errors import ConfigError

    paths = [Path(p) for p in inputs]
    for path in paths:
        if not path.exists():
            raise ConfigError(f"{path}: no such file or folder")
    if out.lower().endswith(".npy"):
        if len(paths) != 1 or not paths[0].is_file():
            raise ConfigError(f"--out {out}: an .npy output takes exactly one input file; give a folder to --out for several")
        return [(paths[0], Path(out))]
    pairs = []
    for path in paths:
        if path.is_dir():
            pairs += [(f, Path(out) / f.relative_to(path).with_suffix(".npy")) for f in midi_files(path)]
        else:
            pairs.append((path, Path(out) / path.with_suffix(".npy").name))
    return pairs


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from midilm import vocab
    from midilm.errors import MidiFileError
    from midilm.tokenizer import tokenize_many

    options = apply_arguments(TokenizerOptions(), args)
    pairs = plan(args.inputs, args.out)
    written: dict[Path, Path] = {}
    failed = events = without_notes = 0
    # files are tokenized in batches (small files share numpy's fixed costs); each result stays per file
    results = tokenize_many([source for source, _ in pairs], options, max_bytes=int(args.max_mb * 2**20))
    for (source, target), result in zip(pairs, results, strict=True):
        if target in written:
            print(f"midilm tokenize: {source}: skipped, its output {target} is already written for {written[target]}", file=sys.stderr)
            failed += 1
            continue
        if isinstance(result, MidiFileError):
            print(f"midilm tokenize: {result}", file=sys.stderr)
            failed += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, result.tokens)
        written[target] = source
        events += result.report.output_events
        if not (result.tokens[:, vocab.EVENT_SLOT] == vocab.EVENT_ID["note"]).any():
            without_notes += 1
            print(f"midilm tokenize: {source}: no notes (written with its {result.report.output_events} other events)", file=sys.stderr)
        if args.verbose:
            print(result.report.format(), file=sys.stderr)
    notes_word = f", {without_notes} without notes" if without_notes else ""
    failed_word = f"; {failed} failed" if failed else ""
    print(f"tokenized {len(written)} files ({events} events{notes_word}) into {args.out}{failed_word}", file=sys.stderr)
    return 1 if failed else 0
