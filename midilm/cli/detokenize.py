"""``midilm detokenize``: a token array (``.npy``) -> MIDI file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = """Write the MIDI file (format 1, 480 ticks per beat) of a v2 token array, as the reference decodes it.

examples:
  midilm detokenize song.npy --out song.mid
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN.npy", help="token array [n_events, 8]")
    parser.add_argument("--out", metavar="OUT.mid", help="MIDI file to write (default: IN with .mid)")


def load_tokens(path: str | Path):
    """A token array from an .npy file, or a TokenError naming the file."""
    import numpy as np

    from midilm.errors import TokenError
    from midilm.tokenizer.grammar import check_shape

    try:
        tokens = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise TokenError(f"{path}: not a readable .npy token array ({exc})") from exc
    check_shape(tokens, str(path))
    return tokens


def run(args: argparse.Namespace) -> int:
    from midilm.tokenizer import tokens_to_midi

    out = Path(args.out) if args.out else Path(args.input).with_suffix(".mid")
    data = tokens_to_midi(load_tokens(args.input))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"wrote {out}", file=sys.stderr)
    return 0
