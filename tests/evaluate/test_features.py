"""Music statistics of one piece, on pieces whose answers are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from midilm import vocab
from midilm.evaluate.features import (
    FEATURES,
    duration_histogram,
    inter_onset_interval,
    note_density,
    piece_features,
    pitch_class_histogram,
    pitch_range,
    polyphony,
    velocity_histogram,
)
from midilm.notes import notes_of_score, notes_of_tokens

C_MAJOR = (60, 62, 64, 65, 67, 69, 71, 72)


@pytest.fixture
def scale():
    """C major, C4 to C5, quarter notes at 120 bpm: 8 notes over 4 seconds."""
    return notes_of_score([480, [["set_tempo", 0, 500_000]] + [["note", 480 * i, 480, 0, p, 64] for i, p in enumerate(C_MAJOR)]])


@pytest.fixture
def chord_then_note():
    """A C major triad held two beats (1 s), then E5 alone for two beats, plus
    a bass drum hit at the start (drums are left out of pitch statistics)."""
    return notes_of_score(
        [480, [["note", 0, 960, 0, p, 100] for p in (60, 64, 67)] + [["note", 960, 960, 0, 76, 20], ["note", 0, 120, 9, 36, 127]]]
    )


def test_c_major_scale(scale):
    expected_pch = np.array([2, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1]) / 8
    np.testing.assert_allclose(pitch_class_histogram(scale), expected_pch)
    assert pitch_range(scale).tolist() == [12.0]
    assert polyphony(scale).tolist() == [1.0]
    assert note_density(scale).tolist() == [2.0]  # 8 notes in 4 s
    assert inter_onset_interval(scale).tolist() == [0.5]
    assert duration_histogram(scale).tolist() == [0, 0, 0, 0, 1, 0, 0, 0]  # every note is one beat
    assert velocity_histogram(scale).tolist() == [0, 0, 0, 0, 1, 0, 0, 0]  # 64 is in 64..79


def scale_tokens() -> np.ndarray:
    """The same scale as token rows: a tempo event, then one note per beat."""
    rows = [vocab.encode_event("set_tempo", time1=0, time2=0, track=0, bpm=120)]
    for i, pitch in enumerate(C_MAJOR):
        rows.append(vocab.encode_event("note", time1=int(i > 0), time2=0, track=0, channel=0, pitch=pitch, velocity=64, duration=16))
    return np.concatenate([[[vocab.BOS] + [vocab.PAD] * 7], rows, [[vocab.EOS] + [vocab.PAD] * 7]]).astype(vocab.TOKEN_DTYPE)


def test_c_major_scale_from_tokens(scale):
    from_tokens = piece_features([notes_of_tokens(scale_tokens())])
    from_score = piece_features([scale])
    for name in FEATURES:
        np.testing.assert_allclose(from_tokens[name], from_score[name], err_msg=name)


def test_chord_then_note(chord_then_note):
    # pitch classes C, E, G, E of the pitched notes; drum 36 ignored
    np.testing.assert_allclose(pitch_class_histogram(chord_then_note), np.array([1, 0, 0, 0, 2, 0, 0, 1, 0, 0, 0, 0]) / 4)
    assert pitch_range(chord_then_note).tolist() == [16.0]
    assert polyphony(chord_then_note).tolist() == [2.0]  # 4 note-seconds over 2 sounding seconds
    assert inter_onset_interval(chord_then_note).tolist() == [1.0]  # onsets 0 and 1 s: a chord counts once
    assert note_density(chord_then_note).tolist() == [2.5]  # 5 notes (drum included) over 2 s
    assert duration_histogram(chord_then_note).tolist() == [0, 0, 0, 0, 0, 1, 0, 0]  # all two beats long
    assert velocity_histogram(chord_then_note).tolist() == [0, 0.2, 0, 0, 0, 0, 0.6, 0.2]


def test_polyphony_ignores_silence_between_notes():
    notes = notes_of_score([480, [["note", 0, 480, 0, 60, 64], ["note", 1920, 480, 0, 62, 64]]])
    assert polyphony(notes).tolist() == [1.0]
    assert inter_onset_interval(notes).tolist() == [2.0]


def test_features_a_piece_cannot_have_are_nan():
    drums_only = notes_of_score([480, [["note", 0, 120, 9, 36, 100]]])
    assert np.isnan(pitch_class_histogram(drums_only)).all()
    assert np.isnan(pitch_range(drums_only)).all() and np.isnan(polyphony(drums_only)).all()
    assert np.isnan(inter_onset_interval(drums_only)).all()  # one onset: no interval
    assert velocity_histogram(drums_only)[6] == 1.0


def test_piece_features_stacks_one_row_per_piece(scale, chord_then_note):
    table = piece_features([scale, chord_then_note])
    assert set(table) == set(FEATURES)
    assert table["pitch_class_histogram"].shape == (2, 12)
    assert table["pitch_range"][:, 0].tolist() == [12.0, 16.0]
