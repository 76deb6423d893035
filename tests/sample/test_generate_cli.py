"""``midilm generate`` as users run it: files per sample, prompts, controls, errors."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from midilm import vocab
from midilm.cli import main
from midilm.tokenizer import read_score, tokenize, tokens_to_midi

PROMPT = Path(__file__).parents[1] / "data" / "golden" / "bach_bwv1.6.mid"


def test_samples_come_out_as_midi_tokens_audio_piano_roll_and_a_record(tiny_gpt_run: Path, tmp_path: Path, capsys) -> None:
    args = ["generate", "--checkpoint", str(tiny_gpt_run), "--num-samples", "2", "--events", "12", "--min-events", "12", "--seed", "5"]
    assert main([*args, "--audio", "--piano-roll", "--out", str(tmp_path / "a")]) == 0
    for i in range(2):
        stem = tmp_path / "a" / f"sample-{i:02d}"
        tokens = np.load(f"{stem}.npy")
        assert tokens.shape == (13, 8) and tokens[0, 0] == vocab.BOS  # BOS + 12 generated events, nothing else
        assert Path(f"{stem}.mid").read_bytes() == tokens_to_midi(tokens)  # the MIDI is those rows, decoded
        with wave.open(f"{stem}.wav") as audio:
            assert audio.getnframes() > 0
        assert Path(f"{stem}.png").stat().st_size > 5_000
        record = json.loads(Path(f"{stem}.json").read_text())
        assert record["seed"] == 5 + i and record["sampling"]["events"] == 12 and record["generated_events"] == 12
        assert record["timing"]["events_per_s"] > 0
    assert "sample-01.mid" in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "b")]) == 0  # same seed, same device: same music
    np.testing.assert_array_equal(np.load(tmp_path / "a" / "sample-01.npy"), np.load(tmp_path / "b" / "sample-01.npy"))


def test_a_prompt_is_continued_from_its_first_events(tiny_gpt_run: Path, golden_dir: Path, tmp_path: Path) -> None:
    prompt = golden_dir / "bach_bwv1.6.mid"
    assert (
        main(
            [
                "generate",
                "--checkpoint",
                str(tiny_gpt_run),
                "--prompt",
                str(prompt),
                "--prompt-events",
                "20",
                "--events",
                "5",
                "--min-events",
                "5",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    tokens = np.load(tmp_path / "sample-00.npy")
    np.testing.assert_array_equal(tokens[:21], tokenize(prompt).tokens[:21])
    assert len(tokens) == 26


def test_controls_reach_the_midi(tiny_gpt_run: Path, tmp_path: Path) -> None:
    args = ["--instruments", "violin,cello", "--drums", "brush", "--bpm", "90", "--time-signature", "6/8", "--key", "E minor"]
    assert main(["generate", "--checkpoint", str(tiny_gpt_run), *args, "--events", "4", "--min-events", "4", "--out", str(tmp_path)]) == 0
    events = [e for track in read_score(tmp_path / "sample-00.mid").to_list()[1:] for e in track]
    assert {(0, 40), (1, 42), (9, 40)} <= {(e[2], e[3]) for e in events if e[0] == "patch_change"}
    assert ["set_tempo", 0, 666666] in events
    assert ["time_signature", 0, 6, 3, 24, 8] in events
    assert ["key_signature", 0, 1, 1] in events


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--key", "H"], "key 'H'"),
        (["--instruments", "kazoo"], "unknown instrument 'kazoo'"),
        (["--top-p", "0"], "top_p must be in (0, 1]"),
        (["--prompt", str(PROMPT), "--bpm", "100"], "either a prompt or controls"),
        (["--prompt", "missing.mid"], "missing.mid: cannot read"),
    ],
)
def test_bad_options_are_explained(tiny_gpt_run: Path, tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    assert main(["generate", "--checkpoint", str(tiny_gpt_run), *extra, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
