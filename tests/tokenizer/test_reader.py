"""The SMF reader: the reference's parsing and note-pairing rules, and the
fast path (runs decoded with numpy) agreeing with the per-event path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from midilm.tokenizer import read_score
from midilm.tokenizer import reader as reader_module
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
    monkeypatch.setattr(reader_module, "_RUN_CONTINUING", never)
    monkeypatch.setattr(reader_module, "_RUN_FRESH", never)
    try:
        slow = read_score(path)
    except MidiFileError as error:
        slow = str(error)
    if isinstance(fast, str):
        assert fast == slow
    else:
        assert fast.to_list() == slow.to_list() and fast.warnings == slow.warnings


def test_note_pairing_is_the_same_for_any_number_of_tracks():
    """Pairing sorts by 16-bit radix passes while track numbers allow it and
    by one packed key beyond: both give the same pairs."""
    import numpy as np

    rng = np.random.default_rng(7)
    count = 3000
    track = np.sort(rng.integers(0, 5, count))
    channel, pitch = rng.integers(0, 3, count), rng.integers(58, 64, count)
    is_on = rng.random(count) < 0.55
    few_tracks = reader_module.pair_notes(track, channel, pitch, is_on, ~is_on)
    many_tracks = reader_module.pair_notes(track + 70_000, channel, pitch, is_on, ~is_on)
    assert len(few_tracks[0]) > 1000 and len(few_tracks[2]) > 0  # closed notes and notes left open
    for radix, packed in zip(few_tracks, many_tracks, strict=True):
        assert radix.tolist() == packed.tolist()
