"""``midilm infill``: rewrite a span of a song so that it joins the music after it."""

from __future__ import annotations

import argparse

from midilm.cli.around import add_common_arguments, run_around

HELP = """Rewrite a span of a song: the notes of the chosen tracks that start in [START, END) are written anew, and everything
else (the music before and after the span, the other tracks, tempo, time and key signatures) stays as it was. Times are
seconds, or bars counted from 1 with --unit bars (--start 9 --end 13 rewrites bars 9 to 12).

examples:
  midilm infill chorale.mid --start 9 --end 13 --unit bars --audio --piano-roll
  midilm infill song.mid --start 20 --end 28 --tracks 2 --num-samples 4
  midilm infill song.mid --start 20 --end 28 --checkpoint runs/antic --mode anticipate
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", type=float, required=True, metavar="S", help="start of the span (seconds, or bars with --unit bars)")
    parser.add_argument("--end", type=float, required=True, metavar="E", help="end of the span, not included")
    parser.add_argument("--unit", choices=("seconds", "bars"), default="seconds", help="unit of --start and --end (default: seconds)")
    parser.add_argument(
        "--tracks",
        default="all",
        metavar="TRACKS",
        help="tracks to rewrite in the span, as `midilm info SONG` lists them, or all (default)",
    )
    parser.add_argument("--prefix", default="infill", help="file name prefix (default: infill)")
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from midilm.sample.infill import infill_task

    settings = {"start": args.start, "end": args.end, "unit": args.unit, "tracks": args.tracks}
    return run_around(args, lambda song, config: infill_task(song, args.start, args.end, args.tracks, args.unit), settings, args.prefix)
