"""The SMF reader: the reference's parsing and note-pairing rules, and the
fast path (runs decoded with numpy) agreeing with the per-event path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from midilm.tokenizer import read_score
from midilm.tokenizer import reader as reader_module
from midilm.tokenizer.reader import notes as notes_module
from midilm.tokenizer.reader import scan as scan_module
from midilm.tokenizer.score import score_from_list

CASES = Path(__file__).parents[1] / "data" / "tokenizer" / "cases"


def notes(score: list, track: int = 0) -> list[list]:
    return [e for e in score[track + 1] if e[0] == "note"]


def test_fifo_pairing_and_note_order(midi):
    """Two overlapping C4s: the first note-off closes the oldest; notes are
    listed where their note-off is, so E4 (closed first) comes first."""
    body = b"\x00\x90\x3c\x50\x10\x3c\x51\x00\x40\x52\x10\x80\x40\x00\x10\x80\x3c\x00\x10\x90\x3c\x00" + midi.END
    assert notes(read_score(midi.smf(body)).to_list()) == [
        ["note", 16, 16, 0, 64, 82],
        ["note", 0, 48, 0, 60, 80],
        ["note", 16, 48, 0, 60, 81],
    ]


def test_unclosed_notes_end_at_the_track_end_in_key_order(midi):
    """Never-closed notes end at the last tick (End-of-Track delta included)
    and follow the track's events, grouped by key in first-opened order."""
    body = b"\x00\x90\x40\x50\x00\x3c\x50\x10\x40\x51\x10\xb0\x07\x64\x20\xff\x2f\x00"
    score = read_score(midi.smf(body)).to_list()
    assert score[1] == [
        ["control_change", 32, 0, 7, 100],
        ["note", 0, 64, 0, 64, 80],
        ["note", 16, 48, 0, 64, 81],
        ["note", 0, 64, 0, 60, 80],
    ]


def test_running_status_survives_meta_and_sysex(midi):
    body = b"\x00\x90\x3c\x50\x00\xff\x01\x02hi\x10\x3e\x50\x00\xf0\x02\x01\xf7\x10\x3c\x00\x00\x3e\x00" + midi.END
    assert [n[4] for n in notes(read_score(midi.smf(body)).to_list())] == [60, 62]


def test_corrupt_pitch_shares_the_references_pairing_key(midi):
    """channel * 128 + pitch: pitch 128 on channel 0 is closed by the note-off
    of pitch 0 on channel 1, which then leaves the channel-1 note open."""
    body = b"\x00\x90\x80\x50\x00\x91\x00\x50\x60\x81\x00\x40" + midi.END
    assert notes(read_score(midi.smf(body)).to_list()) == [["note", 0, 96, 0, 128, 80], ["note", 0, 96, 1, 0, 80]]


def test_meta_events_and_list_round_trip(midi):
    body = b"\x00\xff\x51\x03\x07\xa1\x20\x00\xff\x58\x04\x06\x03\x18\x08\x00\xff\x59\x02\xfd\x01\x00\xc5\x28\x00\xb5\x07\x64" + midi.END
    score = read_score(midi.smf(body))
    as_list = score.to_list()
    assert as_list == [
        480,
        [
            ["set_tempo", 0, 500000],
            ["time_signature", 0, 6, 3, 24, 8],
            ["key_signature", 0, -3, 1],
            ["patch_change", 0, 5, 40],
            ["control_change", 0, 5, 7, 100],
        ],
    ]
    assert score_from_list(as_list).to_list() == as_list


@pytest.mark.parametrize(
    "path", sorted(CASES.glob("*.mid")) + sorted((Path(__file__).parents[1] / "data" / "golden").glob("*.mid")), ids=lambda p: p.stem
)
def test_fast_path_equals_event_by_event_path(path, monkeypatch):
    """Runs decoded with numpy give exactly what reading every event one by one gives."""
    from midilm.errors import MidiFileError

    try:
        fast = read_score(path)
    except MidiFileError as error:
        fast = str(error)
    never = re.compile(rb"(?!)")
    monkeypatch.setattr(scan_module, "RUN_CONTINUING", never)
    monkeypatch.setattr(scan_module, "RUN_FRESH", never)
    try:
        slow = read_score(path)
    except MidiFileError as error:
        slow = str(error)
    if isinstance(fast, str):
        assert fast == slow
    else:
        assert fast.to_list() == slow.to_list() and fast.warnings == slow.warnings


def test_note_pairing_is_the_same_for_any_number_of_tracks():
    """Pairing sorts by one 16-bit radix pass for up to 16 tracks, two passes
    up to 65,536 tracks and one packed key beyond: all give the same pairs."""
    import numpy as np

    rng = np.random.default_rng(7)
    count = 3000
    track = np.sort(rng.integers(0, 5, count))
    pitch_key = rng.integers(0, 3, count) * 128 + rng.integers(58, 64, count)
    is_on = rng.random(count) < 0.55
    results = [notes_module.pair_notes(track * spread, pitch_key, is_on) for spread in (1, 1000, 20_000)]
    assert len(results[0][0]) > 1000 and len(results[0][2]) > 0  # closed notes and notes left open
    for other in results[1:]:
        for one, two in zip(results[0], other, strict=True):
            assert sorted(one.tolist()) == sorted(two.tolist())


@pytest.mark.parametrize("piece_bytes", [16, 200])
def test_small_pieces_give_what_one_piece_gives(piece_bytes, midi, monkeypatch):
    """A large file's numpy work is cut into pieces; tracks, running status
    and open notes carried across the cuts give exactly the one-piece score,
    on real and fuzzed files, alone and in batches."""
    import numpy as np

    from midilm.errors import MidiFileError

    rng = np.random.default_rng(5)
    files = [p.read_bytes() for p in sorted((Path(__file__).parents[1] / "data" / "golden").glob("*.mid"))[::3]]
    files += [midi.smf(*(midi.random_track(rng) for _ in range(int(rng.integers(1, 5))))) for _ in range(60)]
    items = [(data, None) for data in files]

    def read_all():
        scores = [reader_module.read_midis([item])[0] for item in items] + reader_module.read_midis(items)
        return [str(s) if isinstance(s, MidiFileError) else (s.to_list(), s.warnings) for s in scores]

    whole = read_all()
    monkeypatch.setattr(reader_module, "PIECE_BYTES", piece_bytes)
    monkeypatch.setattr(reader_module, "ONE_PIECE_BYTES", 0)
    monkeypatch.setattr(scan_module, "MAX_RUN_BYTES", 8)
    assert read_all() == whole
