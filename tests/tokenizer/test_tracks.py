"""Tracks as ``midilm info`` lists them, and how long notes sound once decoded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from midilm import vocab
from midilm.cli import main
from midilm.tokenizer import detokenize, tokenize
from midilm.tokenizer.decode import TICKS_PER_STEP, sounding_durations
from midilm.tokenizer.tracks import list_tracks


def test_tracks_of_a_chorale(golden_dir: Path, capsys) -> None:
    tracks = list_tracks(tokenize(golden_dir / "bach_bwv1.6.mid").tokens)
    assert [t.track for t in tracks] == [0, 1, 2, 3, 4, 5]
    assert tracks[0].notes == 0 and tracks[0].meta_events == 3
    assert tracks[5].channels == [0] and tracks[5].programs == [0] and (tracks[5].lowest_pitch, tracks[5].highest_pitch) == (41, 62)
    assert main(["info", str(golden_dir / "bach_bwv1.6.mid")]) == 0
    assert "track 5: Acoustic Grand Piano on channel 1, 93 notes, pitches 41-62" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["bach_bwv1.6", "edge_overlap_unterminated", "edge_quantize_collision", "m21_test05"])
def test_sounding_durations_are_the_decoded_ones(golden_dir: Path, name: str) -> None:
    tokens = tokenize(golden_dir / f"{name}.mid").tokens
    notes = tokens[:, 0] == vocab.EVENT_ID["note"]
    decoded = sorted(e[2] for track in detokenize(tokens)[1:] for e in track if e[0] == "note")
    sounding = sounding_durations(tokens)[notes]
    assert sorted(sounding[sounding > 0] * TICKS_PER_STEP) == decoded  # notes cut to nothing are dropped by the decoder
    assert (sounding <= tokens[notes, 7].astype(np.int64) - vocab.PARAM_OFFSET["duration"]).all()
