"""`midilm prepare` as a user runs it: summary, exit codes, options reaching the store."""

from __future__ import annotations

from midilm.cli import main
from midilm.data import TokenStore
from midilm.tokenizer import TokenizerOptions


def test_prepare_a_folder_prints_a_summary(pieces, tmp_path, capsys):
    (pieces / "broken.mid").write_bytes(b"RIFF0000")
    out = tmp_path / "store"
    assert main(["prepare", str(pieces), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "8 files ok" in printed and "1 errors" in printed and "skipped" in printed and "train" in printed
    assert main(["prepare", str(pieces), "--out", str(out), "--quiet"]) == 0
    assert "nothing to tokenize" in capsys.readouterr().out


def test_tokenizer_options_reach_the_store(pieces, tmp_path):
    out = tmp_path / "store"
    assert main(["prepare", str(pieces), "--out", str(out), "--workers", "1", "--quiet", "--no-optimise", "--cc-eps", "0"]) == 0
    assert TokenStore(out).tokenizer_spec == TokenizerOptions(optimise=False, cc_eps=0).spec()


def test_usage_errors_exit_2_with_a_reason(pieces, tmp_path, capsys):
    cases = [
        (["prepare", str(tmp_path / "nowhere"), "--out", str(tmp_path / "s")], "no such file or folder"),
        (["prepare", str(pieces)], "without --out"),
        (["prepare", str(pieces), "--out", str(tmp_path / "s"), "--corpus", "music21-bach"], "--corpus"),
        (["prepare", "--merge", str(tmp_path / "a")], "--merge needs --out"),
        (["prepare", "--merge", str(tmp_path / "a"), "--out", str(tmp_path / "m")], "no token store here"),
        (["prepare", "--shard", "0/2"], "--shard needs --out"),
        (["prepare", str(pieces), "--out", str(tmp_path / "s"), "--shard", "2/2"], "0 <= i < n"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv


def test_merge_from_the_command_line(pieces, tmp_path, capsys):
    for i in range(2):
        assert main(["prepare", str(pieces), "--out", str(tmp_path / f"s{i}"), "--shard", f"{i}/2", "--workers", "1", "--quiet"]) == 0
    assert main(["prepare", "--merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "all"), "--quiet"]) == 0
    assert len(TokenStore(tmp_path / "all")) == 8
    assert "8 files ok" in capsys.readouterr().out


def test_nothing_tokenized_exits_1(tmp_path, capsys):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.mid").write_bytes(b"not midi")
    assert main(["prepare", str(folder), "--out", str(tmp_path / "s"), "--quiet"]) == 1
    assert "no source file could be tokenized" in capsys.readouterr().err
