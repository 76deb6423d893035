"""Small MIDI folders built from the golden oracle files, and helpers, for the corpus pipeline tests.

Helpers are fixtures (test modules are imported in importlib mode and cannot
import this file).
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from midilm.data import PrepareOptions, TokenStore, prepare

GOLDEN_PIECES = (
    "bach_bwv1.6",
    "bach_bwv10.7",
    "bach_bwv101.7",
    "bach_bwv102.7",
    "folk_essen_altdeu10_1",
    "folk_essen_altdeu10_2",
    "folk_essen_altdeu10_3",
    "m21_test01",
)
"""Golden files the reference tokenized without surprises (their .opt.npy is the exact expectation)."""


@pytest.fixture(scope="session")
def golden_pieces() -> tuple[str, ...]:
    return GOLDEN_PIECES


@pytest.fixture(scope="session")
def copy_golden(golden_dir: Path) -> Callable[..., list[Path]]:
    """copy_golden(folder, names=GOLDEN_PIECES) -> the copied paths."""

    def copy(folder: Path, names=GOLDEN_PIECES) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        return [Path(shutil.copy(golden_dir / f"{name}.mid", folder / f"{name}.mid")) for name in names]

    return copy


@pytest.fixture(scope="session")
def text_variant() -> Callable[[bytes, str], bytes]:
    """text_variant(midi_bytes, text): the same music with a text meta event
    added, so other bytes but the same tokens."""

    def variant(data: bytes, text: str) -> bytes:
        header_end = 8 + struct.unpack(">I", data[4:8])[0]
        assert data[header_end : header_end + 4] == b"MTrk", "the first chunk after the header is a track"
        length = struct.unpack(">I", data[header_end + 4 : header_end + 8])[0]
        encoded = text.encode("latin-1")
        assert len(encoded) < 128, "one length byte"
        event = b"\x00\xff\x01" + bytes([len(encoded)]) + encoded  # delta 0, meta event "text"
        first_event = header_end + 8
        return data[:header_end] + b"MTrk" + struct.pack(">I", length + len(event)) + event + data[first_event:]

    return variant


@pytest.fixture(scope="session")
def build() -> Callable[..., tuple[TokenStore, object]]:
    """build(sources, out, **PrepareOptions fields) -> (store, summary), in this
    process (workers=1 unless given) and without progress bars."""

    def run(sources, out: Path, **options) -> tuple[TokenStore, object]:
        options.setdefault("workers", 1)
        summary = prepare(list(sources), out, PrepareOptions(**options), progress=False)
        return TokenStore(out), summary

    return run


@pytest.fixture
def pieces(copy_golden, tmp_path: Path) -> Path:
    """A folder holding the golden pieces."""
    folder = tmp_path / "pieces"
    copy_golden(folder)
    return folder


def records_by_name(store: TokenStore) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in store.records}


@pytest.fixture(scope="session")
def by_name() -> Callable[[TokenStore], dict[str, dict]]:
    """by_name(store) -> manifest rows keyed by file name."""
    return records_by_name
