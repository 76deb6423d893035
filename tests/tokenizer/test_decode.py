"""Tokens -> score -> MIDI bytes, and back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from midilm import vocab
from midilm.errors import MidiFileError, TokenError
from midilm.tokenizer import detokenize, read_score, score_to_midi, tokenize, tokenize_score, tokens_to_midi
from midilm.tokenizer.decode import encode_vlq

ROUND_TRIP_FILES = [
    "bach_bwv1.6",
    "m21_test04",
    "folk_essen_altdeu10_1",
    "edge_many_tracks",
    "edge_format0_multichannel",
    "edge_overlap_unterminated",
]


def canonical(score: list) -> list:
    return [score[0]] + [sorted(track) for track in score[1:]]


@pytest.mark.parametrize("name", ROUND_TRIP_FILES)
def test_written_midi_reads_back_as_the_same_score(name, golden_dir):
    score = json.loads((golden_dir / f"{name}.detok.json").read_text())
    data = score_to_midi(score)
    assert data[:4] == b"MThd" and data[8:10] == b"\x00\x01" and data[12:14] == (480).to_bytes(2, "big")
    # the reader lists a note at its note-off, the decoder at its start: compare per track as sets
    assert canonical(read_score(data).to_list()) == canonical(score)
    np.testing.assert_array_equal(tokenize(data).tokens, tokenize_score(score).tokens)


@pytest.mark.parametrize("name", ROUND_TRIP_FILES)
def test_tokens_to_midi_equals_detokenize_then_write(name, golden_dir):
    tokens = np.load(golden_dir / f"{name}.opt.npy")
    assert tokens_to_midi(tokens) == score_to_midi(detokenize(tokens))


def test_running_status_and_note_offs_like_the_reference():
    """Note-offs are 0x8n with the note's velocity; a repeated status is
    omitted; meta events reset running status; End-of-Track closes the track."""
    score = [480, [["set_tempo", 0, 500000], ["note", 0, 480, 0, 60, 80], ["note", 0, 480, 0, 64, 80]]]
    body = score_to_midi(score)[22:]
    assert body == b"\x00\xff\x51\x03\x07\xa1\x20\x00\x90\x3c\x50\x00\x40\x50\x83\x60\x80\x3c\x50\x00\x40\x50\x00\xff\x2f\x00"


def test_detokenize_skips_invalid_rows_and_cuts_overlaps():
    note = lambda t1, pitch, duration: [3, 9 + t1, 137, 2201, 2329, 2345 + pitch, 2553, 153 + duration]  # noqa: E731
    tokens = np.array(
        [[1, 0, 0, 0, 0, 0, 0, 0], note(0, 60, 32), [3, 9, 137, 9999, 2329, 2405, 2553, 160], note(1, 60, 4), [2, 0, 0, 0, 0, 0, 0, 0]]
    )
    assert detokenize(tokens) == [480, [["note", 0, 480, 0, 60, 80], ["note", 480, 120, 0, 60, 80]]]


def test_very_slow_tempo_is_clamped_when_written():
    """bpm 1 is 60,000,000 us per beat, which 3 bytes cannot hold: the
    slowest writable tempo is written (the reference keeps the low bytes)."""
    data = tokens_to_midi(np.array([[6, 9, 137, 2201, vocab.PARAM_OFFSET["bpm"] + 1, 0, 0, 0]]))
    assert b"\xff\x51\x03\xff\xff\xff" in data


def test_empty_tokens_give_a_valid_file():
    data = tokens_to_midi(np.zeros((0, 8), np.uint16))
    assert read_score(data).tracks == 1 and len(read_score(data).events) == 0


@pytest.mark.parametrize(
    ("tokens", "message"),
    [(np.zeros((3, 7), np.int64), r"shape \[n, 8\]"), (np.zeros(8), r"shape \[n, 8\]"), (np.zeros((2, 8), np.float32), "integer")],
)
def test_tokens_to_midi_refuses_non_token_arrays(tokens, message):
    with pytest.raises(TokenError, match=message):
        tokens_to_midi(tokens)


def test_unwritable_resolution_raises():
    with pytest.raises(MidiFileError, match="ticks per beat"):
        score_to_midi([40000, []])


def test_noise_from_an_untrained_model_decodes_and_tokenizes_again() -> None:
    """Rows a barely trained model wrote (wide jumps in time, tracks and channels): decoding
    them and reading the MIDI back once raised a bare IndexError."""
    from midilm.tokenizer import tokenize, tokens_to_midi

    pad = [0] * 7
    rows = np.array(
        [
            [1, *pad],
            [4, 9, 137, 2202, 2329, 2641, 0, 0],
            [3, 13, 137, 2202, 2329, 2395, 2563, 169],
            [3, 62, 145, 2208, 2329, 2405, 2578, 201],
            [3, 10, 150, 2202, 2333, 2398, 2600, 1965],
            [4, 23, 151, 2233, 2340, 2662, 0, 0],
            [3, 9, 137, 2202, 2337, 2403, 2485, 169],
            [3, 11, 147, 2204, 2340, 2405, 2563, 185],
            [3, 9, 145, 2252, 2337, 2403, 2570, 266],
            [3, 9, 137, 2208, 2336, 2423, 2563, 161],
            [3, 9, 137, 2207, 2329, 2400, 2568, 169],
            [2, *pad],
        ],
        dtype=np.uint16,
    )
    again = tokenize(tokens_to_midi(rows)).tokens
    assert (again[:, 0] == 3).sum() == 8  # the notes survive the round trip


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, "00"), (0x7F, "7f"), (0x80, "8100"), (0x2000, "c000"), (0x3FFF, "ff7f"), (0x4000, "818000"), (0x0FFFFFFF, "ffffff7f")],
)
def test_variable_length_quantities_follow_the_midi_specification(value: int, encoded: str) -> None:
    assert encode_vlq(value).hex() == encoded
