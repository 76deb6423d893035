"""Augmentation, the quality check's thresholds, summaries and the token grammar."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from midilm import vocab
from midilm.errors import TokenError
from midilm.tokenizer import (
    AugmentMaxima,
    AugmentShifts,
    QualityThresholds,
    augment,
    check_quality,
    check_tokens,
    invalid_rows,
    summarize,
    tokenize_score,
)


def note(pitch: int, channel: int = 0, track: int = 1, velocity: int = 80) -> list[int]:
    return [3, 9, 137, 2201 + track, 2329 + channel, 2345 + pitch, 2473 + velocity, 161]


def test_random_shifts_follow_the_references_draw_order():
    rng = random.Random(5)
    expected = AugmentShifts(
        rng.randint(-4, 4), rng.randint(-10, 10), rng.randint(-10, 10), rng.randint(-10, 10), rng.randint(0, 0), rng.randint(0, 16)
    )
    assert AugmentMaxima().draw(random.Random(5)) == expected
    drawn = [AugmentMaxima(pitch=2).draw(np.random.default_rng(seed)) for seed in range(50)]
    assert {d.pitch for d in drawn} <= set(range(-2, 3)) and all(0 <= d.channel <= 16 for d in drawn)
    tokens = np.array([note(60)])
    np.testing.assert_array_equal(augment(tokens, rng=random.Random(5)), augment(tokens, expected))


def test_drums_keep_pitch_and_channel_and_out_of_range_transposition_is_refused():
    tokens = np.array([note(60, channel=9), note(60, channel=8)])
    shifted = augment(tokens, AugmentShifts(pitch=2, channel=1))
    assert (shifted[0, 4] - 2329, shifted[0, 5] - 2345) == (9, 60)
    assert (shifted[1, 4] - 2329, shifted[1, 5] - 2345) == (10, 62)  # 8 + 1 would be 9: becomes (9 + 1) % 16
    high = np.array([note(126), note(40)])
    np.testing.assert_array_equal(augment(high, AugmentShifts(pitch=3)), high)


def test_key_signature_moves_with_transposition_except_on_drum_tracks():
    g_major = [8, 9, 137, 2202, 3389 + 7 + 1, 3404, 0, 0]
    on_drums = [8, 9, 137, 2203, 3389 + 7 + 1, 3404, 0, 0]
    tokens = np.array([g_major, on_drums, note(60, track=1), note(36, channel=9, track=2)])
    shifted = augment(tokens, AugmentShifts(pitch=2))
    assert shifted[0, 4] - 3389 - 7 == 3  # G major + 2 semitones = A major
    assert shifted[1, 4] - 3389 - 7 == 0


def test_quality_thresholds_can_be_overridden(golden_dir):
    tokens = np.load(golden_dir / "bach_bwv10.7.opt.npy")
    assert check_quality(tokens) == (False, ["total_min"])
    relaxed = QualityThresholds(total_notes_min=10)
    assert check_quality(tokens, relaxed) == (True, [])
    assert check_quality(tokens, dataclasses.replace(relaxed, notes_bandwidth_min=100, piano_max=0.0)) == (False, ["bandwidth"])
    assert check_quality(tokens, dataclasses.replace(relaxed, tonality_min=1.01, alignment_min=1.01)) == (False, ["alignment", "tonality"])
    assert all(field.metadata.get("help") for field in dataclasses.fields(QualityThresholds))


def test_summary_counts_and_duration(golden_dir):
    summary = summarize(np.load(golden_dir / "bach_bwv1.6.opt.npy"))
    assert (summary.events, summary.notes, summary.tracks) == (499, 491, 6)
    assert summary.tempos == [75] and summary.seconds == pytest.approx(64.0)
    assert summary.time_signatures == ["4/4"] and summary.key_signatures == ["F major"]
    without_tempo = tokenize_score([480, [["note", 0, 960, 0, 60, 80]]]).tokens
    assert summarize(without_tempo).seconds == pytest.approx(1.0)  # two beats at the default 120 bpm
    assert "duration 1.0 s" in summarize(without_tempo).format()
    assert summarize(without_tempo).channels == [0] and "channels 1\n" in summarize(without_tempo).format()  # 1-based, as users see them


def test_grammar_accepts_tokenizer_output_and_names_bad_rows(golden_dir):
    tokens = np.load(golden_dir / "m21_test04.opt.npy")
    assert not invalid_rows(tokens).any()
    check_tokens(tokens)
    broken = tokens.astype(np.int64).copy()
    broken[5, 4] = vocab.PARAM_OFFSET["pitch"]  # a pitch id in the channel slot
    broken[7] = 0  # a PAD row
    assert np.flatnonzero(invalid_rows(broken)).tolist() == [5, 7]
    with pytest.raises(
        TokenError, match=r"data\.npy: row 5 is invalid \(2 invalid rows in all\): control_change slot 4 \(channel\) holds id 2345"
    ):
        check_tokens(broken, "data.npy")
    padded = tokens.astype(np.int64).copy()
    padded[1, 7] = 5  # a program change has no 7th parameter
    with pytest.raises(TokenError, match="slot 7 \\(padding\\)"):
        check_tokens(padded)
