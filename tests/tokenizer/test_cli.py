"""``midilm tokenize``, ``detokenize`` and ``info``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from midilm.cli import main
from midilm.tokenizer import TokenizerOptions, tokenize


@pytest.fixture
def midi_tree(tmp_path, golden_dir):
    """in/a/x.mid, in/b/x.MID (same name, other folder), in/broken.mid, in/notes.txt."""
    root = tmp_path / "in"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    shutil.copy(golden_dir / "bach_bwv10.7.mid", root / "a" / "x.mid")
    shutil.copy(golden_dir / "m21_test04.mid", root / "b" / "x.MID")
    shutil.copy(golden_dir / "edge_truncated_event.mid", root / "broken.mid")
    (root / "notes.txt").write_text("not midi")
    return root


def test_folder_with_a_broken_file(midi_tree, tmp_path, golden_dir, capsys):
    out = tmp_path / "out"
    assert main(["tokenize", str(midi_tree), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "broken.mid" in err and "cut off" in err and "Traceback" not in err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["a", "a/x.npy", "b", "b/x.npy"]
    np.testing.assert_array_equal(np.load(out / "a" / "x.npy"), np.load(golden_dir / "bach_bwv10.7.opt.npy").astype(np.uint16))
    np.testing.assert_array_equal(np.load(out / "b" / "x.npy"), np.load(golden_dir / "m21_test04.opt.npy").astype(np.uint16))
    assert "tokenized 2 files" in err and "1 failed" in err


def test_single_file_to_npy_with_options(golden_dir, tmp_path):
    out = tmp_path / "song.npy"
    assert main(["tokenize", str(golden_dir / "m21_test04.mid"), "--out", str(out), "--no-optimise", "--cc-eps", "2"]) == 0
    expected = tokenize(golden_dir / "m21_test04.mid", TokenizerOptions(optimise=False, cc_eps=2)).tokens
    np.testing.assert_array_equal(np.load(out), expected)
    assert np.load(out).dtype == np.uint16


def test_files_into_a_folder_and_name_collisions(golden_dir, midi_tree, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        ["tokenize", str(midi_tree / "a" / "x.mid"), str(midi_tree / "b" / "x.MID"), str(golden_dir / "m21_test01.mid"), "--out", str(out)]
    )
    assert code == 1 and "already written" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["m21_test01.npy", "x.npy"]


def test_npy_output_needs_one_file(midi_tree, tmp_path, capsys):
    assert main(["tokenize", str(midi_tree), "--out", str(tmp_path / "x.npy")]) == 2
    assert "exactly one input file" in capsys.readouterr().err


def test_detokenize_and_info(golden_dir, tmp_path, capsys):
    tokens = tmp_path / "song.npy"
    np.save(tokens, np.load(golden_dir / "bach_bwv1.6.opt.npy"))
    assert main(["detokenize", str(tokens)]) == 0
    np.testing.assert_array_equal(tokenize(tmp_path / "song.mid").tokens, np.load(tokens).astype(np.uint16))
    capsys.readouterr()

    assert main(["info", str(golden_dir / "edge_out_of_range.mid")]) == 0
    text = capsys.readouterr().out
    for expected in ("events 3, notes 1", "duration", "tempo (bpm) 383", "out_of_range", "quality: fails total_min"):
        assert expected in text
    assert main(["info", str(tokens), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["summary"]["notes"] == 491 and info["quality"] == {"ok": True, "reasons": []} and info["report"] is None


def test_detokenize_refuses_a_non_token_file(tmp_path, capsys):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 3)))
    assert main(["detokenize", str(bad), "--out", str(tmp_path / "bad.mid")]) == 2
    assert "expected 8 columns" in capsys.readouterr().err


def test_console_exit_code_and_stderr(midi_tree, tmp_path):
    """The real command line: exit code 1 and the broken file named, no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "midilm", "tokenize", str(midi_tree), "--out", str(tmp_path / "out")], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "broken.mid" in done.stderr and "Traceback" not in done.stderr


def test_detokenize_a_folder_mirrors_it(golden_dir, tmp_path, capsys):
    """As ``tokenize`` writes them: a/x.npy -> out/a/x.mid; a bad file is named and skipped."""
    tokens = tmp_path / "tokens"
    assert main(["tokenize", str(golden_dir / "bach_bwv1.6.mid"), "--out", str(tokens / "a" / "x.npy")]) == 0
    assert main(["tokenize", str(golden_dir / "m21_test04.mid"), "--out", str(tokens / "y.npy")]) == 0
    (tokens / "b").mkdir()
    (tokens / "b" / "broken.npy").write_bytes(b"")
    out = tmp_path / "midi"
    capsys.readouterr()
    assert main(["detokenize", str(tokens), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "broken.npy: the file is empty" in err and "wrote 2 MIDI files" in err and "1 failed" in err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mid")) == ["a/x.mid", "y.mid"]
    np.testing.assert_array_equal(tokenize(out / "a" / "x.mid").tokens, np.load(tokens / "a" / "x.npy"))


def test_detokenize_refuses_an_array_without_a_valid_event(tmp_path, capsys):
    """Issue 15, row 8: rows that are all invalid give an error, not an empty MIDI file."""
    bad = tmp_path / "bad.npy"
    np.save(bad, np.full((5, 8), 3000, np.uint16))
    assert main(["detokenize", str(bad)]) == 2
    assert "no valid event found in its 5 rows (row 0: first id 3000 is not an event id" in capsys.readouterr().err
    assert not (tmp_path / "bad.mid").exists()
    markers_only = tmp_path / "empty.npy"
    np.save(markers_only, tokenize(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x00\x04\x00\xff\x2f\x00").tokens)
    assert main(["detokenize", str(markers_only)]) == 0  # BOS and EOS only: an empty piece, not an error


def test_tokenize_names_files_without_notes(tmp_path, capsys):
    meta_only = tmp_path / "meta.mid"
    meta_only.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x00\x0b\x00\xff\x51\x03\x07\xa1\x20\x00\xff\x2f\x00")
    assert main(["tokenize", str(meta_only), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "meta.mid: no notes (written with its 1 other events)" in err and "1 without notes" in err


def test_tokenize_size_limit_option(golden_dir, tmp_path, capsys):
    assert main(["tokenize", str(golden_dir / "bach_bwv1.6.mid"), "--out", str(tmp_path / "x.npy"), "--max-mb", "0.001"]) == 1
    assert "4,646 bytes, over the size limit of 1,048 bytes" in capsys.readouterr().err


def test_info_explains_a_failed_quality_check(golden_dir, capsys):
    assert main(["info", str(golden_dir / "bach_bwv10.7.mid")]) == 0
    out = capsys.readouterr().out
    assert "quality: fails total_min (the reference's filter of training data)" in out
    assert "  total_min: fewer than 256 notes" in out


def test_every_quality_reason_is_explained():
    from midilm.tokenizer import QualityThresholds
    from midilm.tokenizer.quality import describe_reasons, format_quality

    reasons = ["total_min", "total_max", "drum_only", "alignment", "tonality", "bandwidth", "density", "piano"]
    assert sorted(describe_reasons()) == sorted(reasons)
    text = format_quality(False, ["alignment"], QualityThresholds(alignment_min=0.5))
    assert "less than 50% of the notes start on the two most used 1/16-beat positions" in text
