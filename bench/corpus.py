"""Cost of converting the bundled music21 corpus to MIDI, per piece and in full.

Per piece: a sample of the corpus's conversion jobs, converted in this process by music21's own MIDI
export (the reference: parse, then `music21ObjectToMidiFile`, which expands repeats into a deep copy)
and by midilm's conversion (the same parse, the copy skipped for scores without repeat marks), in
turns; CPU-seconds per piece by score format, the ratio, and whether both wrote the same bytes.

In full (--full): the whole corpus from an empty cache with all workers, as `midilm prepare` does it
the first time, and its tokenizing into a store: wall and CPU seconds, against the budget that
`midilm prepare` with no argument should keep on 2 idle cores (--budget-cpu-seconds, 600).
Exits with status 1 when over budget.

    python bench/corpus.py                      # every 10th job of the default corpus
    python bench/corpus.py --every 3 --full     # a larger sample, then the whole corpus from nothing
"""

from __future__ import annotations

import os
import sys

if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)  # this folder's tokenize.py would shadow the standard library's tokenize module

import argparse  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import PurePosixPath  # noqa: E402

from midilm.data.corpus import CORPORA, DEFAULT_CORPUS, corpus_units  # noqa: E402
from midilm.data.corpus import convert as conversion  # noqa: E402
from midilm.data.corpus.catalog import corpus_root, music21_version  # noqa: E402
from midilm.data.workers import default_workers  # noqa: E402


def cpu_seconds(children: bool = False) -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def per_piece(name: str, every: int) -> None:
    """CPU per piece of the reference export and of midilm's, in turns, on every ``every``-th job."""
    warnings.simplefilter("ignore")  # music21's notes on encoding details
    root = corpus_root()
    units = corpus_units(name)[::every]
    spent: dict[str, dict[str, float]] = defaultdict(lambda: {"reference": 0.0, "midilm": 0.0, "pieces": 0})
    different = 0
    for unit in units:
        source = root / unit.source
        for number in list(unit.tunes) or [None]:
            kind = PurePosixPath(unit.source).suffix + (" tune" if unit.tunes else "")
            started = time.process_time()
            reference = conversion._midi_bytes(conversion._parsed(source, number, merge_tunes=unit.merge_tunes))
            spent[kind]["reference"] += time.process_time() - started
            started = time.process_time()
            ours = conversion._piece_midi(source, number, merge_tunes=unit.merge_tunes)
            spent[kind]["midilm"] += time.process_time() - started
            spent[kind]["pieces"] += 1
            different += ours != reference
    print(f"{name}, every {every}th job ({len(units)} jobs), music21 {music21_version()}, one process:")
    print(f"{'format':<12} {'pieces':>7} {'reference ms/piece':>19} {'midilm ms/piece':>16} {'speed-up':>9}")
    totals = {"reference": 0.0, "midilm": 0.0, "pieces": 0}
    for kind, row in sorted(spent.items()):
        for key in totals:
            totals[key] += row[key]
        print(
            f"{kind:<12} {row['pieces']:>7} {1000 * row['reference'] / row['pieces']:>19.1f} {1000 * row['midilm'] / row['pieces']:>16.1f} "
            f"{row['reference'] / row['midilm']:>8.2f}x"
        )
    print(
        f"{'all':<12} {totals['pieces']:>7} {1000 * totals['reference'] / totals['pieces']:>19.1f} "
        f"{1000 * totals['midilm'] / totals['pieces']:>16.1f} {totals['reference'] / totals['midilm']:>8.2f}x"
    )
    print(f"pieces whose MIDI bytes differ: {different}")


def full(name: str, budget_cpu_seconds: float) -> bool:
    """Convert and prepare the whole corpus from an empty cache; True when within the budget."""
    from midilm.data import prepare_corpus

    with tempfile.TemporaryDirectory() as home:
        os.environ["MIDILM_HOME"] = home
        cpu_before, children_before, started = cpu_seconds(), cpu_seconds(children=True), time.perf_counter()
        summary = prepare_corpus(name, progress=True)
        wall = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_before + cpu_seconds(children=True) - children_before
    build = summary.corpus
    print(
        f"{name} from nothing, {default_workers()} workers: {wall:.0f} s wall ({build.seconds:.0f} s converting), {cpu:.0f} CPU-seconds; "
        f"{len(build.files)} pieces converted, {len(build.failures)} failed, {summary.tokenized} tokenized"
    )
    within = cpu <= budget_cpu_seconds
    print(f"budget {budget_cpu_seconds:.0f} CPU-seconds: {'within' if within else 'OVER'} ({cpu / budget_cpu_seconds:.0%})")
    return within


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=DEFAULT_CORPUS, choices=tuple(CORPORA), help="bundled corpus to measure")
    parser.add_argument("--every", type=int, default=10, help="measure every Nth conversion job (default: 10)")
    parser.add_argument("--full", action="store_true", help="also convert and prepare the whole corpus from an empty cache")
    parser.add_argument("--budget-cpu-seconds", type=float, default=600.0, help="CPU budget of --full (default: 600, 5 minutes on 2 cores)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores visible; load average {os.getloadavg()[0]:.1f}")
    per_piece(args.corpus, args.every)
    if args.full and not full(args.corpus, args.budget_cpu_seconds):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
