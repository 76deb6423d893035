"""Every golden file against the reference's oracle: tokens in both settings,
decoding, quality verdict, augmentation with fixed shifts, and the
re-tokenization flag."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from midilm.errors import MidiFileError
from midilm.tokenizer import AugmentShifts, TokenizerOptions, augment, check_quality, detokenize, tokenize, tokenize_score

GOLDEN_NAMES = [
    entry["name"] for entry in json.loads((Path(__file__).parents[1] / "data" / "golden" / "manifest.json").read_text())["files"]
]

DELIBERATE = {
    "edge_not_midi": "not a MIDI file",
    "edge_bad_header_len": "malformed header",
    "edge_division_zero": "0 ticks per beat",
    "edge_truncated_event": "cut off",
}
"""Files midilm refuses on purpose (the reference returns BOS+EOS or crashes)."""

CONVERTED = {"edge_smpte_division"}
"""Files whose tokens differ from the oracle on purpose (SMPTE timing converted)."""

ORACLE_SHIFTS = AugmentShifts(pitch=3, velocity=-5, cc_value=7, bpm=-10, track=0, channel=0)


@pytest.fixture(scope="module")
def entries(golden_manifest):
    return {entry["name"]: entry for entry in golden_manifest["files"]}


@pytest.mark.parametrize("name", GOLDEN_NAMES)
@pytest.mark.parametrize("setting", ["opt", "raw"])
def test_tokens_equal_the_oracle(name, setting, entries, golden_dir):
    entry = entries[name]
    options = TokenizerOptions(optimise=setting == "opt")
    if name in DELIBERATE:
        with pytest.raises(MidiFileError, match=DELIBERATE[name]):
            tokenize(golden_dir / entry["midi"], options)
        return
    result = tokenize(golden_dir / entry["midi"], options)
    assert result.tokens.dtype == np.uint16 and result.tokens.shape[1] == 8
    if setting not in entry:  # the reference crashed: raw mode on edge_dup_keysig_chromatic
        assert entry[f"{setting}_error_class"] == "ValueError"
        assert any("reference crashes" in w for w in result.report.warnings)
        return
    expected = np.load(golden_dir / entry[setting]).astype(np.int64)
    if name in CONVERTED:
        assert result.tokens.shape == expected.shape and not np.array_equal(result.tokens, expected)
        return
    np.testing.assert_array_equal(result.tokens.astype(np.int64), expected)


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_decode_quality_augment_equal_the_oracle(name, entries, golden_dir):
    entry = entries[name]
    if "opt" not in entry:
        pytest.skip("the reference tokenized nothing")
    tokens = np.load(golden_dir / entry["opt"])
    assert detokenize(tokens) == json.loads((golden_dir / entry["detok"]).read_text())
    assert check_quality(tokens) == (entry["quality_ok"], entry["quality_reasons"])
    augmented = augment(tokens, ORACLE_SHIFTS)
    np.testing.assert_array_equal(augmented.astype(np.int64), np.load(golden_dir / entry["augment"]).astype(np.int64))
    assert np.array_equal(augmented, tokens) == entry["augment_unchanged"]
    retokenized = tokenize_score(detokenize(tokens)).tokens
    assert np.array_equal(retokenized.astype(np.int64), tokens.astype(np.int64)) == entry["retokenize_equals_opt"]


def test_raw_mode_duplicate_key_signatures_are_removed(golden_dir):
    """The reference crashes in raw mode on this file (it removes key
    signatures by value from a list it deduplicated); midilm removes them,
    which is what the optimised mode (that works) does too."""
    raw = tokenize(golden_dir / "edge_dup_keysig_chromatic.mid", TokenizerOptions(optimise=False))
    opt = np.load(golden_dir / "edge_dup_keysig_chromatic.opt.npy").astype(np.int64)
    # one track, one channel: raw differs from optimised by the default program change and the
    # track renumbering (0 -> 1)
    expected = opt[opt[:, 0] != 4]
    expected[1:-1, 3] -= 1
    np.testing.assert_array_equal(raw.tokens.astype(np.int64), expected)
    assert raw.report.dropped["default_key_signature"] == 1
    assert raw.report.dropped["duplicate"] == 1


def test_smpte_division_is_converted_at_120_bpm(golden_dir):
    """25 fps x 40 ticks per frame = 1000 ticks per second = 500 ticks per beat
    at 120 bpm: the first note (1000 ticks) lasts 2 beats, the second starts at
    beat 2 and lasts 60 s = 120 beats."""
    result = tokenize(golden_dir / "edge_smpte_division.mid")
    assert result.report.ticks_per_beat == 500
    assert any("SMPTE" in w for w in result.report.warnings)
    notes = result.tokens[result.tokens[:, 0] == 3].astype(np.int64)
    assert (notes[:, 7] - 153).tolist() == [32, 1920]
    assert (notes[:, 1] - 9).tolist() == [0, 2]
