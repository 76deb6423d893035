"""Tokenizer behaviour beyond the oracle: options, the report, what is dropped and why."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from midilm import vocab
from midilm.errors import MidiFileError
from midilm.tokenizer import DROP_REASONS, TOKENIZER_VERSION, TokenizerOptions, tokenize, tokenize_score


def test_options_spec_is_resolved_json_with_version():
    spec = TokenizerOptions(optimise=False, remap_track_channel=True).spec()
    assert json.loads(json.dumps(spec)) == spec
    assert spec["tokenizer_version"] == TOKENIZER_VERSION and spec["vocab"] == vocab.spec()["name"]
    assert (spec["remap_track_channel"], spec["add_default_instr"], spec["remove_empty_channels"]) == (True, False, False)
    assert (
        TokenizerOptions().spec() == TokenizerOptions(remap_track_channel=True, add_default_instr=True, remove_empty_channels=True).spec()
    )
    assert all(field.metadata.get("help") for field in dataclasses.fields(TokenizerOptions))


def test_sources_path_string_and_bytes_agree(golden_dir):
    path = golden_dir / "bach_bwv10.7.mid"
    by_path, by_name, by_bytes = tokenize(path), tokenize(str(path)), tokenize(path.read_bytes())
    np.testing.assert_array_equal(by_path.tokens, by_bytes.tokens)
    np.testing.assert_array_equal(by_name.tokens, by_bytes.tokens)
    assert by_path.report.source == str(path) and by_bytes.report.source is None


def test_missing_file_raises(tmp_path):
    with pytest.raises(MidiFileError, match="cannot read"):
        tokenize(tmp_path / "missing.mid")


def test_bos_eos_option(golden_dir):
    with_markers = tokenize(golden_dir / "bach_bwv10.7.mid").tokens
    without = tokenize(golden_dir / "bach_bwv10.7.mid", TokenizerOptions(add_bos_eos=False)).tokens
    np.testing.assert_array_equal(with_markers[1:-1], without)
    assert with_markers[0].tolist() == [vocab.BOS] + [vocab.PAD] * 7 and with_markers[-1, 0] == vocab.EOS


def test_gap_drops_every_later_event_and_counts_them():
    """Notes at beats 0, 1, then 200, 201, 202: the stream ends at beat 200."""
    score = [480, [["note", beat * 480, 240, 0, 60 + beat % 12, 80] for beat in (0, 1, 200, 201, 202)]]
    result = tokenize_score(score)
    assert result.report.dropped["gap"] == 3
    assert result.report.output_events == 3  # default program + 2 notes


def test_long_note_and_track_limit_are_reported():
    score = [480] + [[] for _ in range(130)]
    score[1] = [["note", 0, 480 * 128, 0, 60, 80], ["note", 0, 480, 0, 62, 80]]
    score[130] = [["note", 0, 480, 1, 64, 80]]
    result = tokenize_score(score)
    assert result.report.dropped["long_note"] == 1 and result.report.dropped["track_limit"] == 1
    assert result.report.lossy


def test_every_drop_reason_is_explained_and_report_prints(golden_dir):
    result = tokenize(golden_dir / "edge_format0_multichannel.mid")
    text = result.report.format()
    for reason in result.report.dropped:
        assert reason in DROP_REASONS and reason in text
    assert json.loads(json.dumps(result.report.to_dict()))["dropped"] == dict(result.report.dropped)
    with pytest.raises(KeyError):
        result.report.drop("no_such_reason")


def test_malformed_list_score_raises():
    with pytest.raises(MidiFileError, match="malformed note"):
        tokenize_score([480, [["note", 0, 480, 0]]])
    with pytest.raises(MidiFileError, match="a score is a list"):
        tokenize_score([])


def test_zero_ticks_per_beat_score_raises():
    with pytest.raises(MidiFileError, match="ticks per beat is 0"):
        tokenize_score([0, [["note", 0, 480, 0, 60, 80]]])
