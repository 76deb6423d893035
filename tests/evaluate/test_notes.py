"""Notes in seconds and beats from decoded scores, checked on hand-made scores."""

from __future__ import annotations

import numpy as np
import pytest

from midilm.errors import TokenError
from midilm.notes import TempoMap, notes_of_score


def test_tempo_changes_turn_ticks_into_seconds():
    # 120 bpm for two beats (1 s), then 60 bpm: each beat lasts a second
    score = [
        480,
        [["set_tempo", 0, 500_000], ["set_tempo", 960, 1_000_000]],
        [["note", 480, 480, 0, 60, 90], ["note", 960, 480, 0, 62, 90], ["note", 1440, 960, 0, 64, 90]],
    ]
    table = notes_of_score(score).table
    assert table["start_seconds"].tolist() == [0.5, 1.0, 2.0]
    assert table["end_seconds"].tolist() == [1.0, 2.0, 4.0]
    assert table["start_beats"].tolist() == [1.0, 2.0, 3.0]
    assert table["end_beats"].tolist() == [2.0, 3.0, 5.0]
    assert table["track"].tolist() == [1, 1, 1]


def test_default_tempo_is_120_bpm_and_seconds_is_the_last_note_end():
    notes = notes_of_score([96, [["note", 0, 96, 0, 60, 90], ["note", 192, 48, 0, 64, 90]]])
    assert notes.table["end_seconds"].tolist() == [0.5, 1.25]
    assert notes.seconds == 1.25
    assert notes.tempo.bpm().tolist() == [120.0]


def test_tempo_map_takes_the_last_of_changes_at_one_tick():
    tempo = TempoMap.from_changes(480, [(480, 250_000), (0, 1_000_000), (480, 500_000)])
    assert tempo.ticks.tolist() == [0, 480]
    assert tempo.to_seconds(np.array([480, 960])).tolist() == [1.0, 1.5]


def test_programs_follow_each_channels_patch_changes_and_drums_are_channel_10():
    score = [
        480,
        [["patch_change", 0, 0, 40], ["note", 0, 480, 0, 67, 80], ["patch_change", 960, 0, 41], ["note", 960, 480, 0, 67, 80]],
        [["note", 480, 480, 1, 48, 70], ["note", 480, 120, 9, 36, 100]],
    ]
    table = notes_of_score(score).table
    assert table[["start_beats", "pitch", "program", "channel", "track", "is_drum"]].tolist() == [
        (0.0, 67, 40, 0, 0, False),
        (1.0, 36, 0, 9, 1, True),
        (1.0, 48, 0, 1, 1, False),
        (2.0, 67, 41, 0, 0, False),
    ]
    assert notes_of_score(score).pitched["pitch"].tolist() == [67, 48, 67]


def test_a_score_without_notes_has_no_seconds():
    notes = notes_of_score([480, [["set_tempo", 0, 400_000]]])
    assert len(notes) == 0 and notes.seconds == 0.0


@pytest.mark.parametrize(
    ("score", "reason"),
    [([], "expected"), ("480", "expected"), ([0, []], "ticks per beat"), ([480, [["set_tempo", 0, 0]]], "non-positive tempo")],
)
def test_bad_scores_are_refused(score, reason):
    with pytest.raises(TokenError, match=reason):
        notes_of_score(score)


@pytest.mark.parametrize("name", ["bach_bwv1.6", "folk_essen_altdeu10_1", "m21_test04", "edge_many_tracks"])
def test_notes_of_tokens_are_those_of_the_decoded_score(golden_dir, name):
    import json

    from midilm.notes import notes_of_tokens, read_notes

    tokens = np.load(golden_dir / f"{name}.opt.npy")
    expected = notes_of_score(json.loads((golden_dir / f"{name}.detok.json").read_text()))
    np.testing.assert_array_equal(notes_of_tokens(tokens).table, expected.table)
    np.testing.assert_array_equal(read_notes(tokens).table, expected.table)
    assert len(expected) > 0


def test_the_notes_of_some_rows_keep_their_time_in_the_whole_piece():
    """Rows count their time from the row before, so the notes of a part (kept or new
    rows of an accompaniment) are read from the whole piece, not from its rows alone."""
    from midilm import vocab
    from midilm.notes import part_notes

    def note(gap_beats: int, step: int, track: int, pitch: int) -> np.ndarray:
        return vocab.encode_event("note", time1=gap_beats, time2=step, track=track, channel=0, pitch=pitch, velocity=90, duration=8)

    bos = np.zeros(vocab.EVENT_LEN, dtype=vocab.TOKEN_DTYPE)
    bos[0] = vocab.BOS
    rows = [bos, note(0, 0, 1, 60), note(0, 4, 2, 64), note(1, 0, 1, 62), note(2, 8, 2, 65), note(0, 8, 1, 67)]
    tokens = np.stack(rows)
    second = tokens[:, 3] == vocab.PARAM_OFFSET["track"] + 2
    part, rest = part_notes(tokens, second)
    assert sorted(zip(part.table["start_beats"].tolist(), part.table["pitch"].tolist(), strict=True)) == [(0.25, 64), (3.5, 65)]
    assert sorted(zip(rest.table["start_beats"].tolist(), rest.table["pitch"].tolist(), strict=True)) == [(0.0, 60), (1.0, 62), (3.5, 67)]
    assert part.tempo == rest.tempo
