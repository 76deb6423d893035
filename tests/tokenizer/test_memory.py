"""Peak memory of tokenizing a large, dense file, as a multiple of its size
(issue 15, row 4; ``bench/tokenizer_memory.py`` measures larger files)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from midilm.tokenizer import tokenize

CEILING = 10
"""Peak allocations at most this many times the file's size (measured: 8.2 for notes, 7.0 with controls)."""


def dense_file(notes: int, controls: bool = False) -> bytes:
    """One track of notes in running status (6 bytes a note, the most events
    per byte a file can hold), or with a control change after each note-on."""
    rng = np.random.default_rng(0)
    pitches = rng.integers(40, 90, notes)
    if controls:
        messages = np.zeros((notes, 3, 4), np.uint8)
        messages[:, 0] = np.stack([np.full(notes, 10), np.full(notes, 0x90), pitches, np.full(notes, 80)], axis=1)
        messages[:, 1] = np.stack([np.full(notes, 5), np.full(notes, 0xB0), np.full(notes, 11), rng.integers(0, 128, notes)], axis=1)
        messages[:, 2] = np.stack([np.full(notes, 50), np.full(notes, 0x80), pitches, np.zeros(notes)], axis=1)
        body = messages.tobytes()
    else:
        messages = np.zeros((notes, 2, 3), np.uint8)
        messages[:, 0, 0], messages[:, 0, 1], messages[:, 0, 2] = 10, pitches, 80
        messages[:, 1, 0], messages[:, 1, 1] = 50, pitches
        body = bytes([0, 0x90]) + messages.reshape(-1)[1:].tobytes()
    body += bytes([0, 0xFF, 0x2F, 0])
    return b"MThd" + (6).to_bytes(4, "big") + bytes([0, 1, 0, 1, 1, 0xE0]) + b"MTrk" + len(body).to_bytes(4, "big") + body


@pytest.mark.parametrize("controls", [False, True], ids=["notes", "notes and controls"])
def test_peak_memory_stays_under_the_ceiling(controls):
    data = dense_file(100_000, controls)
    tracemalloc.start()
    try:
        result = tokenize(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.report.output_events > 100_000  # the notes (and controls not filtered) and a default program
    assert peak < CEILING * len(data), f"peak {peak / len(data):.1f}x the file's size"
