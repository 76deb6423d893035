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
    assert "shape [n, 8]" in capsys.readouterr().err


def test_console_exit_code_and_stderr(midi_tree, tmp_path):
    """The real command line: exit code 1 and the broken file named, no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "midilm", "tokenize", str(midi_tree), "--out", str(tmp_path / "out")], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "broken.mid" in done.stderr and "Traceback" not in done.stderr
