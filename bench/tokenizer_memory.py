"""Tokenizer peak memory against the file's size, for dense generated files
(one track of notes in running status: the most events per byte a MIDI file
can hold, so the worst ratio).

    python bench/tokenizer_memory.py --notes 30000 300000 1000000

Each size runs ``midilm.tokenize`` on the file's bytes in a child process of
its own and reports the peak of numpy and Python allocations
(``tracemalloc``) and the growth of the process's peak resident set while
tokenizing, each as a multiple of the file's size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = """
import json, resource, sys, tracemalloc
import numpy as np
from midilm.tokenizer import tokenize

notes = int(sys.argv[1])
pitches = np.random.default_rng(0).integers(40, 90, notes)
messages = np.empty((notes, 2, 3), np.uint8)
messages[:, 0] = np.stack([np.full(notes, 10), pitches, np.full(notes, 80)], axis=1)
messages[:, 1] = np.stack([np.full(notes, 50), pitches, np.zeros(notes)], axis=1)
body = bytes([0, 0x90]) + messages.reshape(-1)[1:].tobytes() + bytes([0, 0xFF, 0x2F, 0])
data = b"MThd" + (6).to_bytes(4, "big") + bytes([0, 1, 0, 1, 1, 0xE0]) + b"MTrk" + len(body).to_bytes(4, "big") + body
del messages, body, pitches
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
events = tokenize(data).report.output_events
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
print(json.dumps([len(data), events, peak, rss_growth]))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notes", type=int, nargs="+", default=[30_000, 300_000], help="notes of each generated file")
    args = parser.parse_args()
    print(f"{'file MB':>8s} {'events':>9s} {'tracemalloc peak':>17s} {'x file':>7s} {'RSS growth':>11s} {'x file':>7s}")
    for notes in args.notes:
        done = subprocess.run([sys.executable, "-c", CHILD, str(notes)], capture_output=True, text=True, check=True)
        size, events, peak, rss = json.loads(done.stdout)
        print(f"{size / 1e6:8.2f} {events:9,d} {peak / 1e6:14.1f} MB {peak / size:7.1f} {rss / 1e6:8.1f} MB {rss / size:7.1f}")


if __name__ == "__main__":
    main()
