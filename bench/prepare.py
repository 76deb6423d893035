"""Speed of `midilm prepare`: files/s with 1 worker and with all workers, and an incremental no-op rerun.

Runs on the bundled corpus (converted first if it is not cached; the conversion time is printed
apart) and on any folders given. Each measurement prepares into a fresh temporary store.

    python bench/prepare.py                         # the default corpus
    python bench/prepare.py ~/midi/adl --no-corpus  # a folder only
    python bench/prepare.py --corpus music21-bach --workers 1,2,4
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from midilm.data import PrepareOptions, discover, prepare
from midilm.data.corpus import CORPORA, DEFAULT_CORPUS, build_corpus
from midilm.data.workers import default_workers


def measure(name: str, files: list, worker_counts: list[int]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        for workers in worker_counts:
            out = Path(scratch) / f"store-{workers}"
            summary = prepare(files, out, PrepareOptions(workers=workers), progress=False)
            events = sum(split["events"] for split in summary.counts["splits"].values())
            print(
                f"{name}: {summary.tokenized} files, {workers:>2} worker(s): {summary.seconds:7.2f} s  "
                f"{summary.files_per_second:8.1f} files/s  {events / summary.seconds:10.0f} events/s"
            )
        started = time.perf_counter()
        again = prepare(files, out, PrepareOptions(workers=worker_counts[-1]), progress=False)
        assert again.tokenized == 0 and not again.committed
        print(f"{name}: incremental no-op rerun of {len(files)} files: {time.perf_counter() - started:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", help="more sources to measure (folders, files, lists)")
    parser.add_argument("--corpus", default=DEFAULT_CORPUS, choices=tuple(CORPORA), help="bundled corpus to measure")
    parser.add_argument("--no-corpus", action="store_true", help="measure the given folders only")
    parser.add_argument("--workers", default=f"1,{default_workers()}", help="comma-separated worker counts (default: 1 and all cores)")
    args = parser.parse_args()
    worker_counts = [int(w) for w in args.workers.split(",")]
    print(f"{os.cpu_count()} cores visible, {default_workers()} usable; load average {os.getloadavg()[0]:.1f}")
    if not args.no_corpus:
        started = time.perf_counter()
        build = build_corpus(args.corpus, progress=True)
        print(
            f"{args.corpus}: {len(build.files)} MIDI files, {build.converted} converted now in {time.perf_counter() - started:.1f} s "
            f"({len(build.failures)} failed)"
        )
        measure(args.corpus, build.files, worker_counts)
    for folder in args.folders:
        measure(folder, discover([folder]), worker_counts)


if __name__ == "__main__":
    main()
