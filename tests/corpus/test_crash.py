"""A prepare killed with SIGKILL (whole process group) at a random moment: the store stays
readable and the next run completes it with nothing lost or duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from midilm.data import PrepareOptions, TokenStore, prepare
from midilm.errors import StoreError
from midilm.tokenizer import AugmentShifts, augment, tokenize, tokens_to_midi

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs process groups")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, golden_dir) -> Path:
    """About 1,000 distinct pieces: the golden files the tokenizer accepts, transposed 1..12 semitones
    (enough that a quiet machine is still preparing when the test stops it)."""
    folder = tmp_path_factory.mktemp("corpus")
    for path in sorted(golden_dir.glob("*.mid")):
        try:
            tokens = tokenize(path).tokens
        except Exception:
            continue
        for semitones in range(1, 13):
            moved = augment(tokens, AugmentShifts(pitch=semitones))
            (folder / f"{path.stem}_up{semitones}.mid").write_bytes(tokens_to_midi(moved))
    return folder


def journal_lines(store: Path) -> int:
    try:
        return (store / "journal.jsonl").read_bytes().count(b"\n")
    except OSError:
        return 0


def prepare_and_stop(sources: list[Path], out: Path, after_files: int, *, interrupt: bool = False) -> tuple[int, str]:
    """Run `midilm prepare` in its own process group and, once at least
    ``after_files`` results are journaled (the journal's first line is its
    header), SIGKILL the whole group, or send SIGINT (Ctrl-C) to the command
    alone; its exit status and stderr."""
    command = [sys.executable, "-m", "midilm", "prepare", *map(str, sources), "--out", str(out), "--workers", "2", "--quiet"]
    process = subprocess.Popen(
        command,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # Python's Ctrl-C handling, whatever the runner ignores
    )
    deadline = time.monotonic() + 120
    while journal_lines(out) <= after_files:
        if process.poll() is not None:
            pytest.fail(f"prepare ended before it could be stopped: {process.stderr.read().decode()[-500:]}")
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail("prepare made no progress in 120 s")
        time.sleep(0.002)
    if interrupt:
        process.send_signal(signal.SIGINT)
    else:
        os.killpg(process.pid, signal.SIGKILL)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr.decode()


def assert_same_store(store: TokenStore, fresh: TokenStore) -> None:
    assert store.identity == fresh.identity
    strip = lambda rows: [{k: v for k, v in r.items() if k != "offset"} for r in rows]  # noqa: E731
    assert strip(store.records) == strip(fresh.records)
    assert store.header["rows"] == fresh.header["rows"]  # no row stored twice
    for i in range(len(fresh)):
        np.testing.assert_array_equal(store.tokens(i), fresh.tokens(i))


def test_first_run_killed_then_completed(corpus, tmp_path):
    out = tmp_path / "store"
    prepare_and_stop([corpus], out, after_files=40)
    with pytest.raises(StoreError, match="interrupted"):
        TokenStore(out)
    summary = prepare([corpus], out, PrepareOptions(workers=1), progress=False)
    assert summary.resumed >= 40 and summary.tokenized == len(list(corpus.iterdir())) - summary.resumed
    fresh = tmp_path / "fresh"
    prepare([corpus], fresh, PrepareOptions(workers=1), progress=False)
    assert_same_store(TokenStore(out), TokenStore(fresh))
    assert not (out / "journal.jsonl").exists()


def test_update_killed_leaves_the_store_readable(corpus, golden_dir, tmp_path):
    out = tmp_path / "store"
    before = prepare([golden_dir], out, PrepareOptions(workers=1), progress=False)
    prepare_and_stop([golden_dir, corpus], out, after_files=60)
    readable = TokenStore(out)
    assert readable.identity == before.identity and len(readable.records) == before.counts["files_seen"]
    summary = prepare([golden_dir, corpus], out, PrepareOptions(workers=1), progress=False)
    assert summary.resumed >= 60
    fresh = tmp_path / "fresh"
    prepare([golden_dir, corpus], fresh, PrepareOptions(workers=1), progress=False)
    assert_same_store(TokenStore(out), TokenStore(fresh))


def test_ctrl_c_exits_130_and_the_rerun_resumes(corpus, tmp_path):
    out = tmp_path / "store"
    status, stderr = prepare_and_stop([corpus], out, after_files=30, interrupt=True)
    assert status == 130 and "interrupted" in stderr and "Traceback" not in stderr, (status, stderr[-800:])
    summary = prepare([corpus], out, PrepareOptions(workers=1), progress=False)
    assert summary.resumed >= 30 and summary.counts["files_seen"] == len(list(corpus.iterdir()))
