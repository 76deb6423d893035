"""Peak memory of tokenizing a large, dense file, as a multiple of its size
(issue 15, row 4; ``bench/tokenizer_memory.py`` measures larger files)."""

from __future__ import annotations

import tracemalloc

import numpy as np

from midilm.tokenizer import tokenize

CEILING = 64
"""Peak allocations at most this many times the file's size (measured: 60)."""


def dense_file(notes: int) -> bytes:
    """One track of notes in running status: 6 bytes a note, the most events per byte a file can hold."""
    pitches = np.random.default_rng(0).integers(40, 90, notes)
    messages = np.zeros((notes, 2, 3), np.uint8)
    messages[:, 0, 0], messages[:, 0, 1], messages[:, 0, 2] = 10, pitches, 80
    messages[:, 1, 0], messages[:, 1, 1] = 50, pitches
    body = bytes([0, 0x90]) + messages.reshape(-1)[1:].tobytes() + bytes([0, 0xFF, 0x2F, 0])
    return b"MThd" + (6).to_bytes(4, "big") + bytes([0, 1, 0, 1, 1, 0xE0]) + b"MTrk" + len(body).to_bytes(4, "big") + body


def test_peak_memory_stays_under_the_ceiling():
    data = dense_file(100_000)
    tracemalloc.start()
    try:
        result = tokenize(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.report.output_events == 100_001  # the notes and a default program
    assert peak < CEILING * len(data), f"peak {peak / len(data):.1f}x the file's size"
