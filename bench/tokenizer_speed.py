"""Tokenizer speed: midilm (batched, and one file per call) beside its own
parser, symusic's parser (the floor) and, when available, the reference
(SkyTNT midi-model), all measured in one run.

    python bench/tokenizer_speed.py tests/data/golden [MORE_PATHS...] [--reference /path/to/midi-model] [--repeat 5] [--clock cpu]

Every measurement reads the files from disk and works in this one process;
the reference runs in a child process of its own (it is never imported into
midilm), timing read + ``MIDI.midi2score`` + ``MIDITokenizerV2.tokenize``.
Events are token rows between BOS and EOS as midilm counts them, so every
line's events/s is comparable. The measurements take turns, ``--repeat``
rounds of each, so that load on the machine hits them alike, and each line
reports its median round. In a round each measurement runs twice in a row
and the second run is timed: the steady state of a long job, whose caches
are warm (the first pass after other work is slower for everyone, and the
more so the shorter it is). ``--clock cpu`` times the CPU time of each
process instead of the wall clock: on a machine shared with other jobs, it
counts the work done and not the time spent waiting for a core.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from midilm.cli.tokenize import midi_files
from midilm.errors import MidiFileError, MidilmError
from midilm.tokenizer import TokenizerOptions, read_score, read_scores, tokenize, tokenize_many

REFERENCE_TIMER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import MIDI
from midi_tokenizer import MIDITokenizer
tokenizer = MIDITokenizer("v2")
tokenizer.set_optimise_midi(sys.argv[2] == "opt")
clock = time.process_time if sys.argv[3] == "cpu" else time.perf_counter
paths = json.loads(sys.stdin.readline())

def run():
    events, failed = 0, 0
    for path in paths:
        try:
            with open(path, "rb") as file:
                events += len(tokenizer.tokenize(MIDI.midi2score(file.read()))) - 2
        except Exception:
            failed += 1
    return events, failed

for _ in sys.stdin:
    run()
    start = clock()
    events, failed = run()
    print(json.dumps([clock() - start, events, failed]), flush=True)
"""

Round = Callable[[], tuple[float, int, int]]
"""Tokenizes (or parses) every file twice, timing the second pass: (seconds, events, failed files)."""


def timed(function: Callable[[list[Path]], tuple[int, int]], paths: list[Path], clock: Callable[[], float]) -> Round:
    def run() -> tuple[float, int, int]:
        function(paths)
        start = clock()
        events, failed = function(paths)
        return clock() - start, events, failed

    return run


def per_file(function: Callable[[Path], int]) -> Callable[[list[Path]], tuple[int, int]]:
    """One call per file; a MidilmError counts as a failed file."""

    def run(paths: list[Path]) -> tuple[int, int]:
        events = failed = 0
        for path in paths:
            try:
                events += function(path)
            except MidilmError:
                failed += 1
        return events, failed

    return run


def symusic_parse(path: Path) -> int:
    import symusic

    try:
        symusic.Score(str(path))
    except Exception as exc:  # symusic raises its own errors on malformed files
        raise MidilmError(str(exc)) from exc
    return 0


class Reference:
    """The reference in a child process of its own, timing one round per request."""

    def __init__(self, folder: Path, paths: list[Path], setting: str, clock: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", REFERENCE_TIMER, str(folder), setting, clock], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self._send(json.dumps([str(p) for p in paths]))

    def _send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def __call__(self) -> tuple[float, int, int]:
        self._send("run")
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the reference stopped (exit code {self.process.wait()})")
        seconds, events, failed = json.loads(line)
        return seconds, events, failed

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="MIDI files and folders (searched recursively)")
    parser.add_argument(
        "--reference",
        default=os.environ.get("MIDILM_REFERENCE"),
        help="folder holding the reference's MIDI.py and midi_tokenizer.py (default: $MIDILM_REFERENCE)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="rounds of each measurement; the median is reported")
    parser.add_argument("--setting", choices=["opt", "raw"], default="opt", help="optimise_midi on (opt) or off (raw)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall", help="time the wall clock or each process's CPU time")
    args = parser.parse_args()

    paths = [f for p in map(Path, args.paths) for f in (midi_files(p) if p.is_dir() else [p])]
    megabytes = sum(p.stat().st_size for p in paths) / 1e6
    options = TokenizerOptions(optimise=args.setting == "opt")

    def tokenize_batched(paths: list[Path]) -> tuple[int, int]:
        results = list(tokenize_many(paths, options))
        failed = sum(isinstance(r, MidiFileError) for r in results)
        return sum(r.report.output_events for r in results if not isinstance(r, MidiFileError)), failed

    def parse_batched(paths: list[Path]) -> tuple[int, int]:
        return 0, sum(isinstance(r, MidiFileError) for r in read_scores(paths))

    def tokenize_one(path: Path) -> int:
        return tokenize(path, options).report.output_events

    def parse_one(path: Path) -> int:
        read_score(path)
        return 0

    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    rounds: dict[str, Round] = {
        "midilm tokenize_many (batched)": timed(tokenize_batched, paths, clock),
        "midilm tokenize (one call per file)": timed(per_file(tokenize_one), paths, clock),
        "midilm read_scores (batched parse)": timed(parse_batched, paths, clock),
        "midilm read_score (one call per file)": timed(per_file(parse_one), paths, clock),
        "symusic parse only (floor)": timed(per_file(symusic_parse), paths, clock),
    }
    reference = Reference(Path(args.reference), paths, args.setting, args.clock) if args.reference else None
    if reference:
        rounds["reference read + midi2score + tokenize"] = reference
    results: dict[str, list[tuple[float, int, int]]] = {name: [] for name in rounds}
    try:
        for _ in range(args.repeat):
            for name, run in rounds.items():
                results[name].append(run())
    finally:
        if reference:
            reference.close()

    events = results["midilm tokenize_many (batched)"][0][1]
    median = {name: statistics.median(seconds for seconds, _, _ in runs) for name, runs in results.items()}
    print(
        f"{len(paths)} files, {megabytes:.2f} MB, {events} events ({args.setting}), "
        f"median of {args.repeat} rounds taken in turn, {args.clock} clock, Python {sys.version.split()[0]}"
    )
    print(f"{'step':40s} {'seconds':>9s} {'files/s':>9s} {'events/s':>11s} {'MB/s':>7s} {'failed':>6s}")
    for name, runs in results.items():
        seconds = median[name]
        print(f"{name:40s} {seconds:9.3f} {len(paths) / seconds:9.1f} {events / seconds:11,.0f} {megabytes / seconds:7.2f} {runs[0][2]:6d}")
    if reference:
        reference_seconds = median["reference read + midi2score + tokenize"]
        reference_events = results["reference read + midi2score + tokenize"][0][1]
        for name in ("midilm tokenize_many (batched)", "midilm tokenize (one call per file)"):
            print(f"{name}: {reference_seconds / median[name]:.1f}x the reference's events/s")
        print(f"(the reference emitted {reference_events} events)")


if __name__ == "__main__":
    main()
