"""``midilm accompany``: keep tracks of a song and let the model add instruments around them."""

from __future__ import annotations

import argparse

from midilm.cli.around import add_common_arguments, run_around

HELP = """Accompany a song: keep some of its tracks exactly as they are (every note, tempo, time and key signature) and let
the model write new instruments around them, from the start to the end of the song. Works with every model: a model
trained with --anticipation reads the kept music ahead; any other model has the kept events placed as their time comes.

examples:
  midilm info melody.mid                                        (lists the tracks by number)
  midilm accompany melody.mid --keep 1 --add piano,bass --audio --piano-roll
  midilm accompany song.mid --keep all --drums standard --num-samples 4 --seed 7 --out samples/drums
  midilm accompany chorale.mid --keep 1,2,3 --add "French Horn" --checkpoint runs/antic --temperature 0.9
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep", default="all", metavar="TRACKS", help="tracks to keep, by the numbers `midilm info SONG` lists, or all (default: all)"
    )
    parser.add_argument(
        "--add",
        default="",
        metavar="INSTRUMENTS",
        help="General MIDI instruments to add, by name or program number, e.g. 'piano,bass' or '0,33'; each gets a new track and channel",
    )
    parser.add_argument(
        "--drums", default="", metavar="KIT", help="also add drums: standard, room, power, electronic, tr-808, jazz, brush, orchestra, sfx"
    )
    parser.add_argument("--prefix", default="accompaniment", help="file name prefix (default: accompaniment)")
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from midilm.sample.accompany import accompaniment_task

    def build(song, config):
        return accompaniment_task(song, args.keep, args.add, args.drums, disabled_channels=config.disable_channels)

    return run_around(args, build, {"keep": args.keep, "add": args.add, "drums": args.drums}, args.prefix)
