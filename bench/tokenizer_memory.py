"""Tokenizer peak memory against the file's size, for generated files of a
few shapes (one track of notes in running status is the most events per byte
a MIDI file can hold, so the worst ratio of real music).

    python bench/tokenizer_memory.py --notes 30000 300000 1000000
    python bench/tokenizer_memory.py --notes 300000 --shape running explicit controls programs
    python bench/tokenizer_memory.py --notes 50000 --shape running explicit controls --write /tmp/dense  # files for tokenizer_speed.py

Each file runs ``midilm.tokenize`` on the file's bytes in a child process of
its own and reports the peak of numpy and Python allocations
(``tracemalloc``) and the growth of the process's peak resident set while
tokenizing, each as a multiple of the file's size. Shapes: ``running``
(notes in running status, 6 bytes a note), ``explicit`` (every status byte
written, 8 bytes a note), ``controls`` (a control change with every note),
``programs`` (a program change before every note: events that break the
runs of channel messages, read one by one).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, resource, sys, tracemalloc
import numpy as np
from midilm.tokenizer import tokenize

shape, notes = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
pitch = rng.integers(40, 90, notes)
def rows(*columns):
    return np.stack([np.broadcast_to(np.asarray(c, np.uint8), (notes,)) for c in columns], axis=1)
if shape == "running":
    body = np.stack([rows(10, pitch, 80), rows(50, pitch, 0)], axis=1).reshape(-1)[1:].tobytes()
    body = bytes([0, 0x90]) + body
elif shape == "explicit":
    body = np.stack([rows(10, 0x90, pitch, 80), rows(50, 0x80, pitch, 0)], axis=1).tobytes()
elif shape == "controls":
    value = rng.integers(0, 128, notes)
    body = np.stack([rows(10, 0x90, pitch, 80), rows(5, 0xB0, 11, value), rows(50, 0x80, pitch, 0)], axis=1).tobytes()
else:
    program = np.stack([rows(0, 0xC0, pitch % 8)], axis=1).reshape(notes, -1)
    note = np.stack([rows(10, 0x90, pitch, 80), rows(50, 0x80, pitch, 0)], axis=1).reshape(notes, -1)
    body = np.concatenate([program, note], axis=1).tobytes()
body += bytes([0, 0xFF, 0x2F, 0])
data = b"MThd" + (6).to_bytes(4, "big") + bytes([0, 1, 0, 1, 1, 0xE0]) + b"MTrk" + len(body).to_bytes(4, "big") + body
del body, pitch
if len(sys.argv) > 3:
    open(sys.argv[3], "wb").write(data)
    sys.exit()
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
events = tokenize(data, max_bytes=len(data)).report.output_events
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
print(json.dumps([len(data), events, peak, rss_growth]))
"""

SHAPES = ("running", "explicit", "controls", "programs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notes", type=int, nargs="+", default=[30_000, 300_000], help="notes of each generated file")
    parser.add_argument("--shape", nargs="+", choices=SHAPES, default=["running"], help="kinds of file (see above)")
    parser.add_argument("--write", type=Path, metavar="DIR", help="write the files (SHAPE-NOTES.mid) to DIR instead of measuring")
    args = parser.parse_args()
    if args.write:
        args.write.mkdir(parents=True, exist_ok=True)
        for shape in args.shape:
            for notes in args.notes:
                path = args.write / f"{shape}-{notes}.mid"
                subprocess.run([sys.executable, "-c", CHILD, shape, str(notes), str(path)], check=True)
                print(path)
        return
    print(f"{'shape':>9s} {'file MB':>8s} {'events':>10s} {'tracemalloc peak':>17s} {'x file':>7s} {'RSS growth':>11s} {'x file':>7s}")
    for shape in args.shape:
        for notes in args.notes:
            done = subprocess.run([sys.executable, "-c", CHILD, shape, str(notes)], capture_output=True, text=True, check=True)
            size, events, peak, rss = json.loads(done.stdout)
            print(
                f"{shape:>9s} {size / 1e6:8.2f} {events:10,d} {peak / 1e6:14.1f} MB {peak / size:7.1f} {rss / 1e6:8.1f} MB {rss / size:7.1f}"
            )


if __name__ == "__main__":
    main()
