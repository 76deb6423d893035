"""Helpers for the tokenizer tests: build small MIDI files inline."""

from __future__ import annotations

import numpy as np
import pytest

from midilm.tokenizer.decode import encode_vlq as vlq


def chunk(body: bytes, kind: bytes = b"MTrk", length: int | None = None) -> bytes:
    return kind + (len(body) if length is None else length).to_bytes(4, "big") + body


def smf(*tracks: bytes, division: int = 480, raw_chunks: bool = False) -> bytes:
    """A format-1 file; ``tracks`` are track bodies, or whole chunks with ``raw_chunks``."""
    chunks = b"".join(tracks if raw_chunks else (chunk(t) for t in tracks))
    return b"MThd" + (6).to_bytes(4, "big") + (1).to_bytes(2, "big") + len(tracks).to_bytes(2, "big") + division.to_bytes(2, "big") + chunks


END = b"\x00\xff\x2f\x00"
"""End-of-Track with delta 0."""


NOTE_TRACK = b"\x00\x90\x3c\x50\x83\x60\x80\x3c\x40" + END
"""Middle C for one beat at 480 ticks per beat."""


def random_track(rng: np.random.Generator) -> bytes:
    """Random events: notes (often overlapping, some corrupt), controls, programs,
    meta events, sysex, running status, and now and then a cut or an early end."""
    body = bytearray()
    for _ in range(int(rng.integers(0, 80))):
        body += vlq(int(rng.choice([0, 0, 1, 60, 240, 480, 5000])))
        kind = rng.random()
        if kind < 0.6:
            status = int(rng.choice([0x80, 0x90, 0x90])) | int(rng.choice([0, 1, 9, int(rng.integers(0, 16))]))
            body += bytes([status, int(rng.integers(58, 64)), int(rng.choice([0, 64, 100]))])
            if rng.random() < 0.3:  # running status
                body += vlq(int(rng.integers(0, 100))) + bytes([int(rng.integers(58, 64)), int(rng.choice([0, 80]))])
        elif kind < 0.75:
            body += bytes([0xB0 | int(rng.integers(0, 16)), int(rng.choice([7, 10, 64])), int(rng.integers(0, 128))])
        elif kind < 0.82:
            body += bytes([0xC0 | int(rng.integers(0, 16)), int(rng.integers(0, 128))])
        elif kind < 0.92:
            meta = int(rng.choice([0x51, 0x58, 0x59, 0x01, 0x05]))
            payload = {
                0x51: bytes([7, 161, 32]),
                0x58: bytes([3, 2, 24, 8]),
                0x59: bytes([int(rng.integers(0, 256)), int(rng.integers(0, 2))]),
            }
            data = payload.get(meta, bytes(int(rng.integers(0, 6))))
            body += bytes([0xFF, meta]) + vlq(len(data)) + data
        elif kind < 0.95:
            body += bytes([0xF0, 2, 1, 0xF7])
        else:
            body += bytes([0x90, int(rng.integers(128, 256)), 64])  # a corrupt data byte
    body += END
    if rng.random() < 0.05:
        body = body[: int(rng.integers(1, len(body)))]
    return bytes(body)


class MidiBytes:
    """The builders above, for tests (test modules cannot import this conftest)."""

    smf = staticmethod(smf)
    chunk = staticmethod(chunk)
    vlq = staticmethod(vlq)
    END = END
    NOTE_TRACK = NOTE_TRACK
    random_track = staticmethod(random_track)


@pytest.fixture
def midi() -> type[MidiBytes]:
    return MidiBytes
