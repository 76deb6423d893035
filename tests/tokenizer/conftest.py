"""Helpers for the tokenizer tests: build small MIDI files inline."""

from __future__ import annotations

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


class MidiBytes:
    """The builders above, for tests (test modules cannot import this conftest)."""

    smf = staticmethod(smf)
    chunk = staticmethod(chunk)
    vlq = staticmethod(vlq)
    END = END
    NOTE_TRACK = NOTE_TRACK


@pytest.fixture
def midi() -> type[MidiBytes]:
    return MidiBytes
