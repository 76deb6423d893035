"""``midilm accompany`` and ``midilm infill`` as users run them: files, records, piano rolls, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from midilm import vocab
from midilm.cli import main
from midilm.tokenizer import tokens_to_midi

SONG = Path(__file__).parents[1] / "data" / "golden" / "bach_bwv10.7.mid"


def test_accompany_writes_each_piece_with_its_record_and_a_two_colour_piano_roll(tiny_gpt_run: Path, tmp_path: Path, capsys) -> None:
    args = ["accompany", str(SONG), "--keep", "1", "--add", "piano,bass", "--checkpoint", str(tiny_gpt_run)]
    assert main([*args, "--num-samples", "2", "--seed", "4", "--piano-roll", "--out", str(tmp_path)]) == 0
    for i in range(2):
        stem = tmp_path / f"accompaniment-{i:02d}"
        tokens = np.load(f"{stem}.npy")
        assert tokens[0, 0] == vocab.BOS and tokens[-1, 0] == vocab.EOS
        assert Path(f"{stem}.mid").read_bytes() == tokens_to_midi(tokens)
        assert Path(f"{stem}.png").stat().st_size > 5_000
        record = json.loads(Path(f"{stem}.json").read_text())
        assert record["seed"] == 4 + i and record["mode"] == "interleave" and record["keep"] == "1"
        assert record["voices"] == ["Acoustic Grand Piano (track 2, channel 2)", "Acoustic Bass (track 3, channel 3)"]
        assert record["kept_events"] + record["new_events"] == len(tokens) - 2
        assert record["files"]["piano_roll"] == f"accompaniment-{i:02d}.png"
        assert record["sampling"]["events"] >= record["new_events"] and record["sampling"]["events"] != 512  # the budget used
        assert record["stopped_by"] in ("eos", "events")
    assert "mode: interleave" in capsys.readouterr().out


def test_infill_takes_bars_or_seconds_and_refuses_a_track_the_song_lacks(tiny_anticipation_run: Path, tmp_path: Path, capsys) -> None:
    base = ["infill", str(SONG), "--checkpoint", str(tiny_anticipation_run), "--out", str(tmp_path)]
    assert main([*base, "--start", "3", "--end", "5", "--unit", "bars"]) == 0
    record = json.loads((tmp_path / "infill-00.json").read_text())
    assert record["mode"] == "anticipate" and (record["start"], record["end"], record["unit"]) == (3, 5, "bars")
    assert main([*base, "--start", "4", "--end", "6", "--tracks", "9", "--mode", "interleave"]) == 2
    assert "has no track 9" in capsys.readouterr().err
