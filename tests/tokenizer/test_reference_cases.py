"""Small fuzz-found and hand-made files (``tests/data/tokenizer/cases``) whose
tokens the reference computed under five option sets
(``reference_cases.json``): quirks of parsing, pairing, deduplication,
renumbering, key signatures, setup collapsing and range checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from midilm.errors import MidiFileError
from midilm.tokenizer import TokenizerOptions, tokenize

DATA = Path(__file__).parents[1] / "data" / "tokenizer"
CASES = json.loads((DATA / "reference_cases.json").read_text())


REFUSED = {"long_vlq": "longer than 4 bytes"}
"""Cases midilm refuses on purpose: a delta time of 6 bytes, beyond the MIDI standard's 4 (issue 15)."""


@pytest.mark.parametrize("name", sorted(CASES["files"]))
def test_tokens_equal_the_reference(name):
    expected = CASES["files"][name]
    path = DATA / "cases" / f"{name}.mid"
    if name in REFUSED:
        with pytest.raises(MidiFileError, match=REFUSED[name]):
            tokenize(path)
        return
    if "error" in expected:  # the reference's parser raised
        with pytest.raises(MidiFileError, match="cut off"):
            tokenize(path)
        return
    for mode, options in CASES["modes"].items():
        result = tokenize(path, TokenizerOptions(**options))
        if isinstance(expected[mode], dict):  # the reference's tokenizer crashed (raw-mode key signature bug)
            assert any("reference crashes" in w for w in result.report.warnings), mode
            assert not np.any(result.tokens[:, 0] == 8), mode
            continue
        assert result.tokens.astype(np.int64).tolist() == expected[mode], mode
        report = result.report
        assert report.input_events + sum(report.added.values()) == report.output_events + sum(report.dropped.values()), mode
