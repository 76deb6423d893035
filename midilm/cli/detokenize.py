"""``midilm detokenize``: token arrays (``.npy``) -> MIDI files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = """Write the MIDI file (format 1, 480 ticks per beat) of a v2 token array, as the reference decodes it.

IN is an .npy token array [n_events, 8], or a folder searched recursively for .npy files (as
`midilm tokenize` writes them): a/x.npy becomes OUT/a/x.mid. Rows that are not valid events are
skipped and counted; an array with no valid event at all is an error. In a folder, a file that
cannot be decoded is reported on stderr and skipped; the exit code is then 1.

examples:
  midilm detokenize song.npy --out song.mid
  midilm detokenize tokens/ --out midi/
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN", help="token array .npy, or a folder of them")
    parser.add_argument("--out", metavar="OUT", help="MIDI file to write, or folder for a folder (default: beside each input, with .mid)")


def plan(source: Path, out: str | None) -> list[tuple[Path, Path]]:
    """(token file, MIDI file) pairs for the input and --out."""
    from midilm.errors import ConfigError

    if source.is_dir():
        root = Path(out) if out else source
        return [(path, root / path.relative_to(source).with_suffix(".mid")) for path in sorted(source.rglob("*.npy")) if path.is_file()]
    if not source.exists():
        raise ConfigError(f"{source}: no such file or folder")
    return [(source, Path(out) if out else source.with_suffix(".mid"))]


def write_midi(source: Path, target: Path) -> int:
    """Decode one token file into ``target``; returns how many rows were skipped as invalid."""
    from midilm.errors import TokenError
    from midilm.tokenizer import invalid_rows, load_tokens, tokens_to_midi
    from midilm.tokenizer.grammar import describe_row, event_rows

    tokens = load_tokens(source)
    decoded = event_rows(tokens, check_padding=False)  # as the decoder reads rows
    skipped = invalid_rows(tokens) & ~decoded
    if skipped.any() and not decoded.any():
        first = int(skipped.nonzero()[0][0])
        raise TokenError(f"{source}: no valid event found in its {len(tokens)} rows (row {first}: {describe_row(tokens[first])})")
    data = tokens_to_midi(tokens)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return int(skipped.sum())


def run(args: argparse.Namespace) -> int:
    from midilm.errors import ConfigError, MidilmError

    source = Path(args.input)
    pairs = plan(source, args.out)
    if not source.is_dir():
        ((path, target),) = pairs
        skipped = write_midi(path, target)
        print(f"wrote {target}" + (f" ({skipped} invalid rows skipped)" if skipped else ""), file=sys.stderr)
        return 0
    if not pairs:
        raise ConfigError(f"{source}: no .npy files in this folder")
    failed = 0
    for path, target in pairs:
        try:
            skipped = write_midi(path, target)
        except MidilmError as error:
            print(f"midilm detokenize: {error}", file=sys.stderr)
            failed += 1
            continue
        if skipped:
            print(f"midilm detokenize: {path}: {skipped} invalid rows skipped", file=sys.stderr)
    print(f"wrote {len(pairs) - failed} MIDI files into {args.out or source}" + (f"; {failed} failed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0
