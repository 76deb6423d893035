"""``midilm info``: what a MIDI file (or token array) holds, what tokenizing it drops, and its quality verdict."""

from __future__ import annotations

import argparse
import json

from midilm.config import add_dataclass_arguments, apply_arguments
from midilm.tokenizer.options import TokenizerOptions

HELP = """Describe a MIDI file or a token array (.npy): events, notes, tracks, channels, duration, tempo,
time and key signatures, what tokenization dropped or added and why, and the quality verdict. Each track is
listed by the number that `midilm accompany --keep` and `midilm infill --tracks` take.

examples:
  midilm info song.mid
  midilm info song.mid --no-optimise --json
  midilm info song.npy
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN", help="MIDI file, or token array .npy")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    add_dataclass_arguments(parser.add_argument_group("tokenizer options (MIDI input)"), TokenizerOptions)


def run(args: argparse.Namespace) -> int:
    from midilm.tokenizer import check_quality, load_tokens, summarize, tokenize
    from midilm.tokenizer.quality import format_quality
    from midilm.tokenizer.tracks import list_tracks

    report = None
    if args.input.lower().endswith(".npy"):
        tokens = load_tokens(args.input)
    else:
        result = tokenize(args.input, apply_arguments(TokenizerOptions(), args))
        tokens, report = result.tokens, result.report
    summary = summarize(tokens)
    tracks = list_tracks(tokens)
    ok, reasons = check_quality(tokens)
    if args.json:
        print(
            json.dumps(
                {
                    "file": args.input,
                    "summary": summary.to_dict(),
                    "tracks": [t.to_dict() for t in tracks],
                    "report": report.to_dict() if report else None,
                    "quality": {"ok": ok, "reasons": reasons},
                }
            )
        )
        return 0
    print(args.input)
    print(summary.format())
    print("tracks (numbers as accompany --keep and infill --tracks take them):")
    for track in tracks:
        print(f"  {track.describe()}")
    if report is not None:
        print(report.format())
    print(format_quality(ok, reasons))
    return 0
