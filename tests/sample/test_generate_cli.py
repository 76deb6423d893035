"""``midilm generate`` as users run it: files per sample, prompts, controls, errors."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np

from midilm import vocab
from midilm.cli import main
from midilm.tokenizer import tokenize, tokens_to_midi

PROMPT = Path(__file__).parents[1] / "data" / "golden" / "bach_bwv1.6.mid"


def test_samples_come_out_as_midi_tokens_audio_piano_roll_and_a_record(tiny_gpt_run: Path, tmp_path: Path, capsys) -> None:
    args = ["generate", "--checkpoint", str(tiny_gpt_run), "--num-samples", "2", "--events", "12", "--min-events", "12", "--seed", "5"]
    args += ["--seconds", "0"]  # no limit: an untrained model's twelve events may span minutes
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
        assert record["stopped_by"] == "events" and record["timing"]["events_per_s"] > 0
    out = capsys.readouterr().out
    assert out.startswith("seed 5 ") and "sample-01.mid  (12 new events, " in out and "; stopped at the event limit, --events 12)" in out
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
                "--seconds",
                "0",
                "--piano-roll",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    tokens = np.load(tmp_path / "sample-00.npy")
    np.testing.assert_array_equal(tokens[:21], tokenize(prompt).tokens[:21])  # the prompt is kept whole
    assert len(tokens) == 26 and (tmp_path / "sample-00.png").is_file()  # the piano roll marks where it ends


def seed_of(record: Path) -> int:
    return json.loads(record.read_text())["seed"]


def test_runs_without_a_seed_differ_and_the_printed_seed_makes_them_again(tiny_gpt_run: Path, tmp_path: Path, capsys) -> None:
    args = ["generate", "--checkpoint", str(tiny_gpt_run), "--events", "16", "--min-events", "16", "--seconds", "0"]
    for name in ("a", "b"):
        assert main([*args, "--out", str(tmp_path / name)]) == 0
    printed = [int(line.split()[1]) for line in capsys.readouterr().out.splitlines() if line.startswith("seed ")]
    assert printed == [seed_of(tmp_path / name / "sample-00.json") for name in ("a", "b")] and printed[0] != printed[1]
    assert not np.array_equal(np.load(tmp_path / "a" / "sample-00.npy"), np.load(tmp_path / "b" / "sample-00.npy"))
    assert main([*args, "--seed", str(printed[0]), "--out", str(tmp_path / "again")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "a" / "sample-00.npy"), np.load(tmp_path / "again" / "sample-00.npy"))


def test_pieces_stop_at_three_minutes_unless_told(tiny_gpt_run: Path, tmp_path: Path, capsys) -> None:
    # an untrained model writes long gaps, so its 512 events would last an hour
    assert main(["generate", "--checkpoint", str(tiny_gpt_run), "--seed", "5", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "sample-00.json").read_text())
    assert record["stopped_by"] == "seconds" and record["sampling"]["seconds"] == 180
    assert "stopped at the seconds limit, --seconds 180)" in capsys.readouterr().out
