"""Files that are not regular files (issue 15, row 5), and a folder of every kind of bad input:
`prepare` reads only regular files, records the others with the reason, never hangs, and stores every good file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from midilm.data import PrepareOptions, TokenStore, prepare
from midilm.errors import ConfigError

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")

ROOT = Path(__file__).resolve().parents[2]
FIFO_REASON = "not a regular file (a named pipe (FIFO)); only regular files are read"


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`midilm ARGS` in a fresh process, killed if it hangs (a FIFO opened for reading waits forever)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "midilm", *args], capture_output=True, text=True, timeout=timeout, env=env)


def add_special_files(folder: Path) -> dict[str, str]:
    """A FIFO, a link to a character device and a socket, each named like a MIDI file: name -> expected reason."""
    os.mkfifo(folder / "pipe.mid")
    os.symlink("/dev/zero", folder / "zero.mid")
    expected = {"pipe.mid": FIFO_REASON, "zero.mid": "not a regular file (a character device); only regular files are read"}
    if len(str(folder / "sock.mid")) < 100:  # AF_UNIX paths are short
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(folder / "sock.mid"))
        expected["sock.mid"] = "not a regular file (a socket); only regular files are read"
    return expected


def test_prepare_skips_fifos_devices_and_sockets_in_a_folder(pieces, tmp_path, by_name, golden_pieces):
    expected = add_special_files(pieces)
    out = tmp_path / "store"
    for attempt in ("first run", "rerun"):  # the rerun hashes unchanged files: it must not open the FIFO either
        result = run_cli("prepare", str(pieces), "--out", str(out), "--workers", "2", "--quiet")
        assert result.returncode == 0 and "Traceback" not in result.stderr, (attempt, result.stderr[-1500:])
        rows = by_name(TokenStore(out))
        for name, reason in expected.items():
            assert rows[name]["status"] == "error" and rows[name]["reason"] == reason, (attempt, rows[name])
        assert all(rows[f"{piece}.mid"]["status"] == "ok" for piece in golden_pieces)
    assert "skipped      1: not a regular file (a named pipe (FIFO))" in result.stdout


def test_a_fifo_named_directly_or_in_a_list_is_recorded_not_read(pieces, tmp_path, by_name):
    fifo = tmp_path / "direct.mid"
    os.mkfifo(fifo)
    listed = tmp_path / "listed.midi"
    os.mkfifo(listed)
    paths = tmp_path / "paths.txt"
    paths.write_text(f"{listed}\n{pieces / 'bach_bwv1.6.mid'}\n")
    prepare([fifo, paths], tmp_path / "store", PrepareOptions(workers=1), progress=False)
    rows = by_name(TokenStore(tmp_path / "store"))
    assert rows["direct.mid"]["reason"] == rows["listed.midi"]["reason"] == FIFO_REASON
    assert rows["bach_bwv1.6.mid"]["status"] == "ok"


def test_a_source_that_is_neither_a_folder_nor_a_regular_file_is_refused(tmp_path):
    fifo = tmp_path / "list.txt"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"list\.txt: a named pipe \(FIFO\), not a folder, a MIDI file or a list file"):
        prepare([fifo], tmp_path / "store", PrepareOptions(workers=1), progress=False)


def test_a_binary_file_given_as_a_list_is_refused_before_it_is_read_whole(tmp_path):
    blob = tmp_path / "song.mp3"
    blob.write_bytes(b"ID3\x03\x00\x00\x00" + bytes(1 << 20))
    with pytest.raises(ConfigError, match="neither a .mid/.midi file nor a text file listing paths"):
        prepare([blob], tmp_path / "store", PrepareOptions(workers=1), progress=False)


def long_varint_file(good: bytes) -> bytes:
    """A valid file whose first track starts with a delta time written in 2,100 bytes (issue 15, row 2)."""
    track = good.index(b"MTrk")
    length = int.from_bytes(good[track + 4 : track + 8], "big")
    body = b"\xff" * 2100 + b"\x00" + good[track + 8 : track + 8 + length]
    return good[:track] + b"MTrk" + len(body).to_bytes(4, "big") + body + good[track + 8 + length :]


def test_prepare_on_a_folder_mixing_every_bad_input_with_good_files(pieces, tmp_path, by_name, golden_pieces):
    """Every good file is stored, every bad one reported with a reason, no traceback (the issue's 'done when')."""
    good = (pieces / "bach_bwv1.6.mid").read_bytes()
    bad = {
        "empty.mid": b"",
        "text.mid": b"this is not music\n",
        "cut.mid": good[:30],  # cut inside its first track: nothing left to learn from
        "huge_chunk.mid": good[:4] + b"\xff\xff\xff\xff" + good[8:],
        "long_varint.mid": long_varint_file(good),
        "header_only.mid": good[:14],
    }
    for name, data in bad.items():
        (pieces / name).write_bytes(data)
    (pieces / "folder.mid").mkdir()  # a folder named like a file is searched, not read
    special = add_special_files(pieces)
    out = tmp_path / "store"
    result = run_cli("prepare", str(pieces), "--out", str(out), "--workers", "2", "--quiet")
    assert result.returncode == 0 and "Traceback" not in result.stderr + result.stdout, result.stderr[-1500:]
    rows = by_name(TokenStore(out))
    for name in [*bad, *special]:
        assert rows[name]["status"] == "error" and rows[name]["reason"], rows[name]
    assert all(rows[f"{piece}.mid"]["status"] == "ok" for piece in golden_pieces)
    assert f"{len(golden_pieces)} files ok" in result.stdout and f"{len(bad) + len(special)} errors" in result.stdout
    TokenStore(out).verify()


def test_prepare_refuses_a_file_over_the_size_limit_before_reading_it(tmp_path):
    from midilm.data.prepare import tokenize_file
    from midilm.tokenizer import TokenizerOptions

    huge = tmp_path / "huge.mid"
    with huge.open("wb") as handle:
        handle.truncate(1 << 40)  # 1 TiB, sparse: reading it would fail for memory, not for the limit
    result, tokens = tokenize_file(str(huge), options=TokenizerOptions(), cpu_limit_seconds=None)
    assert tokens is None and "over the size limit of 67,108,864 bytes" in result["error"], result
