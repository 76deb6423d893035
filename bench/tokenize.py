"""Tokenizer speed: midilm beside its own parser, symusic's parser (the floor)
and, when available, the reference (SkyTNT midi-model), all measured in one run.

    python bench/tokenize.py tests/data/golden [MORE_PATHS...] [--reference /path/to/midi-model] [--repeat 3]

Every measurement reads the files from disk and works in this one process;
the reference runs in a child process of its own (it is never imported into
midilm), timing read + ``MIDI.midi2score`` + ``MIDITokenizerV2.tokenize``.
Events are token rows between BOS and EOS as midilm counts them, so every
line's events/s is comparable. Times are the median of ``--repeat`` runs.
"""

from __future__ import annotations

import os
import sys

# this script shares its name with the standard library's ``tokenize``: keep its folder off the import path
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != os.path.dirname(os.path.abspath(__file__))]

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from midilm.cli.tokenize import midi_files  # noqa: E402
from midilm.errors import MidilmError  # noqa: E402
from midilm.tokenizer import TokenizerOptions, read_score, tokenize  # noqa: E402

REFERENCE_TIMER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import MIDI
from midi_tokenizer import MIDITokenizer
tokenizer = MIDITokenizer("v2")
tokenizer.set_optimise_midi(sys.argv[2] == "opt")
paths = sys.argv[4:]
times, events, failed = [], 0, 0
for _ in range(int(sys.argv[3])):
    start, events, failed = time.perf_counter(), 0, 0
    for path in paths:
        try:
            with open(path, "rb") as file:
                events += len(tokenizer.tokenize(MIDI.midi2score(file.read()))) - 2
        except Exception:
            failed += 1
    times.append(time.perf_counter() - start)
print(json.dumps({"times": times, "events": events, "failed": failed}))
"""


def timed(function, paths: list[Path], repeat: int) -> tuple[float, int, int]:
    """Median seconds of ``function`` over all paths, the events it reports, and failures."""
    times = []
    for _ in range(repeat):
        start, events, failed = time.perf_counter(), 0, 0
        for path in paths:
            try:
                events += function(path)
            except MidilmError:
                failed += 1
        times.append(time.perf_counter() - start)
    return statistics.median(times), events, failed


def symusic_parse(path: Path) -> int:
    import symusic

    try:
        symusic.Score(str(path))
    except Exception as exc:  # symusic raises its own errors on malformed files
        raise MidilmError(str(exc)) from exc
    return 0


def reference_times(reference: Path, paths: list[Path], setting: str, repeat: int) -> tuple[float, int, int]:
    done = subprocess.run(
        [sys.executable, "-c", REFERENCE_TIMER, str(reference), setting, str(repeat), *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return statistics.median(result["times"]), result["events"], result["failed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="MIDI files and folders (searched recursively)")
    parser.add_argument(
        "--reference",
        default=os.environ.get("MIDILM_REFERENCE"),
        help="folder holding the reference's MIDI.py and midi_tokenizer.py (default: $MIDILM_REFERENCE)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is reported")
    parser.add_argument("--setting", choices=["opt", "raw"], default="opt", help="optimise_midi on (opt) or off (raw)")
    args = parser.parse_args()

    paths = [f for p in map(Path, args.paths) for f in (midi_files(p) if p.is_dir() else [p])]
    megabytes = sum(p.stat().st_size for p in paths) / 1e6
    options = TokenizerOptions(optimise=args.setting == "opt")

    def midilm_tokenize(path: Path) -> int:
        return tokenize(path, options).report.output_events

    def midilm_parse(path: Path) -> int:
        read_score(path)
        return 0

    rows = {}
    rows["midilm read + tokenize"] = timed(midilm_tokenize, paths, args.repeat)
    events = rows["midilm read + tokenize"][1]
    rows["midilm read + parse only"] = timed(midilm_parse, paths, args.repeat)
    rows["symusic parse only (floor)"] = timed(symusic_parse, paths, args.repeat)
    if args.reference:
        rows["reference read + midi2score + tokenize"] = reference_times(Path(args.reference), paths, args.setting, args.repeat)

    print(
        f"{len(paths)} files, {megabytes:.2f} MB, {events} events ({args.setting}), median of {args.repeat} runs, Python {sys.version.split()[0]}"
    )
    print(f"{'step':40s} {'seconds':>9s} {'files/s':>9s} {'events/s':>11s} {'MB/s':>7s} {'failed':>6s}")
    for name, (seconds, _, failed) in rows.items():
        print(f"{name:40s} {seconds:9.3f} {len(paths) / seconds:9.1f} {events / seconds:11,.0f} {megabytes / seconds:7.2f} {failed:6d}")
    if args.reference:
        reference_seconds, reference_events, _ = rows["reference read + midi2score + tokenize"]
        ratio = reference_seconds / rows["midilm read + tokenize"][0]
        print(f"midilm is {ratio:.1f}x the reference's events/s (the reference emitted {reference_events} events)")


if __name__ == "__main__":
    main()
