"""``tokenize_many``: files read and encoded together give exactly what each
gives alone (the reference's tokens, the same reports), in order, with bad
files returned as errors in their place."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from midilm.errors import MidiFileError
from midilm.tokenizer import MidiScore, TokenizerOptions, api, read_score, read_scores, tokenize, tokenize_many, tokenize_score

DATA = Path(__file__).parents[1] / "data"
REFUSED = {"long_vlq": "longer than 4 bytes"}
"""Reference cases midilm refuses on purpose (see test_reference_cases.py)."""
CASES = json.loads((DATA / "tokenizer" / "reference_cases.json").read_text())


@pytest.mark.parametrize("mode", sorted(CASES["modes"]))
def test_a_batch_of_reference_cases_gives_the_references_tokens(mode):
    names = sorted(CASES["files"])
    options = TokenizerOptions(**CASES["modes"][mode])
    results = list(tokenize_many([DATA / "tokenizer" / "cases" / f"{name}.mid" for name in names], options))
    assert len(results) == len(names)
    for name, result in zip(names, results, strict=True):
        expected = CASES["files"][name]
        if "error" in expected or name in REFUSED:
            assert isinstance(result, MidiFileError) and REFUSED.get(name, "cut off") in str(result), name
        elif isinstance(expected[mode], dict):  # the reference crashed (raw-mode key signature bug)
            assert any("reference crashes" in w for w in result.report.warnings), name
        else:
            assert result.tokens.astype(np.int64).tolist() == expected[mode], name


@pytest.mark.parametrize("optimise", [True, False])
def test_a_batch_equals_one_file_at_a_time(optimise, golden_dir, tmp_path, monkeypatch):
    """Golden files (readable and not), a missing path and raw bytes, in
    batches of 7: the same tokens, reports and errors as ``tokenize``."""
    monkeypatch.setattr(api, "MAX_BATCH_FILES", 7)
    sources: list = sorted(golden_dir.glob("*.mid"))
    sources[10:10] = [tmp_path / "missing.mid", (golden_dir / "bach_bwv1.6.mid").read_bytes()]
    options = TokenizerOptions(optimise=optimise)
    results = list(tokenize_many(sources, options))
    assert len(results) == len(sources)
    errors = 0
    for source, result in zip(sources, results, strict=True):
        try:
            alone = tokenize(source, options)
        except MidiFileError as error:
            errors += 1
            assert isinstance(result, MidiFileError) and str(result) == str(error)
            continue
        assert result.tokens.dtype == alone.tokens.dtype
        np.testing.assert_array_equal(result.tokens, alone.tokens)
        assert result.report.to_dict() == alone.report.to_dict()
    assert errors == 5  # the missing path and the four files midilm refuses


def test_read_scores_equals_read_score(golden_dir, monkeypatch):
    monkeypatch.setattr(api, "MAX_BATCH_BYTES", 4096)
    sources = sorted(golden_dir.glob("*.mid"))
    scores = list(read_scores(sources))
    assert len(scores) == len(sources)
    for source, score in zip(sources, scores, strict=True):
        try:
            alone = read_score(source)
        except MidiFileError as error:
            assert isinstance(score, MidiFileError) and str(score) == str(error)
            continue
        assert score.to_list() == alone.to_list()
        assert (score.ticks_per_beat, score.tracks, score.warnings, score.dropped) == (
            alone.ticks_per_beat,
            alone.tracks,
            alone.warnings,
            alone.dropped,
        )


def test_nothing_in_nothing_out():
    assert list(tokenize_many([])) == []
    assert list(read_scores([])) == []


def test_a_batch_refuses_only_its_implausible_scores():
    """Hand-built scores that no MIDI file gives are refused one by one, with
    the reason; the others of the batch are encoded as if alone."""
    from midilm.tokenizer.encoder import encode_batch
    from midilm.tokenizer.report import TokenizeReport
    from midilm.tokenizer.score import score_from_list

    good = score_from_list([480, [["set_tempo", 0, 500000], ["note", 0, 480, 0, 60, 80], ["note", 480, 240, 0, 64, 90]]])
    zero_division = score_from_list([0, [["note", 0, 480, 0, 60, 80]]])
    huge_time = score_from_list([480, [["note", 2**50, 480, 0, 60, 80]]])
    wrong_track = MidiScore(480, 1, np.array([[0, 0, 3, 0, 60, 80, 480]], np.int64))
    wrong_shape = MidiScore(480, 1, np.zeros((2, 5), np.int64))
    scores = [good, zero_division, good, huge_time, wrong_track, wrong_shape, good]
    results = encode_batch(scores, TokenizerOptions(), [TokenizeReport() for _ in scores])
    reasons = [str(r) if isinstance(r, MidiFileError) else None for r in results]
    assert reasons == [
        None,
        "<bytes>: ticks per beat is 0",
        None,
        "<bytes>: event times or values beyond 2**48: not a plausible score",
        "<bytes>: events of kinds 0..0 on tracks 3..3: expected kinds 0..5 on tracks 0..0",
        "<bytes>: a score's events are an integer table [n, 7], not ndarray (2, 5)",
        None,
    ]
    alone = tokenize_score(good).tokens
    for result in (results[0], results[2], results[6]):
        np.testing.assert_array_equal(result, alone)


def test_random_files_give_the_same_in_a_batch_as_alone(midi, monkeypatch):
    """Seeded random (often malformed) files in small batches: the same
    tokens, reports and errors as one file at a time, in both settings."""
    monkeypatch.setattr(api, "MAX_BATCH_FILES", 9)
    rng = np.random.default_rng(20240611)
    files = [
        midi.smf(*(midi.random_track(rng) for _ in range(int(rng.integers(1, 5)))), division=int(rng.choice([96, 480, 7])))
        for _ in range(150)
    ]
    for optimise in (True, False):
        options = TokenizerOptions(optimise=optimise)
        for data, result in zip(files, tokenize_many(files, options), strict=True):
            try:
                alone = tokenize(data, options)
            except MidiFileError as error:
                assert isinstance(result, MidiFileError) and str(result) == str(error)
                continue
            np.testing.assert_array_equal(result.tokens, alone.tokens)
            assert result.report.to_dict() == alone.report.to_dict()
