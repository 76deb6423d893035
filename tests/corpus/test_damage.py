"""Damaged stores (issue 15, rows 1 and 7): refused at open or by verify() with the file and field named,
repaired by `prepare`, never trained on."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from midilm.data import PrepareOptions, TokenStore, prepare
from midilm.data.store_files import ROW_BYTES
from midilm.errors import StoreError
from midilm.tokenizer import tokenize

ROOT = Path(__file__).resolve().parents[2]
LEGACY_STORE = ROOT / "tests" / "data" / "legacy" / "store-v1"


@pytest.fixture(scope="module")
def sources(tmp_path_factory, copy_golden) -> Path:
    folder = tmp_path_factory.mktemp("damage") / "pieces"
    copy_golden(folder)
    shutil.copy(folder / "bach_bwv1.6.mid", folder / "zz_copy.mid")  # a duplicate: two manifest rows share one stream
    return folder


@pytest.fixture(scope="module")
def pristine(sources, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pristine") / "store"
    prepare([sources], out, PrepareOptions(workers=1), progress=False)
    return out


@pytest.fixture
def store(pristine, tmp_path) -> Path:
    """A fresh copy of a good store of the golden pieces."""
    return Path(shutil.copytree(pristine, tmp_path / "store"))


def header_of(store: Path) -> dict:
    return json.loads((store / "store.json").read_text())


def file_of(store: Path, key: str) -> Path:
    return store / header_of(store)["files"][key]


def write_header(store: Path, header: dict) -> None:
    (store / "store.json").write_text(json.dumps(header))


def rehash(store: Path, key: str) -> None:
    """Record the damaged file's SHA-256, as a forger (or a buggy tool) would: the structure checks must still catch it."""
    header = header_of(store)
    header["checksums"][key] = hashlib.sha256(file_of(store, key).read_bytes()).hexdigest()
    write_header(store, header)


def rerun(sources: Path, store: Path):
    return prepare([sources], store, PrepareOptions(workers=1), progress=False)


def assert_like(store: Path, pristine: Path) -> None:
    """``store`` verifies and holds exactly the pristine store's tokens."""
    repaired, original = TokenStore(store), TokenStore(pristine)
    repaired.verify()
    assert repaired.identity == original.identity and len(repaired) == len(original)
    for i in range(len(original)):
        np.testing.assert_array_equal(repaired.tokens(i), original.tokens(i))


# ----- row 1: a truncated, deleted or zero-filled token file ----------------------------------------------------------


@pytest.mark.parametrize("kept", [0.5, 0.0, 1000 / 197072])
def test_a_truncated_token_file_is_refused_at_open_and_repaired_by_prepare(store, sources, pristine, kept):
    tokens = file_of(store, "tokens")
    size = tokens.stat().st_size
    os.truncate(tokens, int(size * kept))
    with pytest.raises(StoreError, match=r"truncated token file .* run `midilm prepare` on its sources again"):
        TokenStore(store)
    summary = rerun(sources, store)
    assert (
        summary.repaired > 0 and summary.tokenized == summary.repaired and summary.reused == summary.counts["files_seen"] - summary.repaired
    )
    assert "holds" in summary.damage and "repaired" in summary.format()
    assert_like(store, pristine)
    assert file_of(store, "tokens").stat().st_size == TokenStore(store).header["rows"] * ROW_BYTES


def test_only_the_files_whose_rows_were_lost_are_tokenized_again(store, sources, pristine):
    tokens = file_of(store, "tokens")
    os.truncate(tokens, tokens.stat().st_size - ROW_BYTES)  # the last row of the last stream
    summary = rerun(sources, store)
    assert summary.tokenized == summary.repaired == 1
    assert_like(store, pristine)


def test_a_deleted_token_file_is_refused_and_every_file_tokenized_again(store, sources, pristine):
    file_of(store, "tokens").unlink()
    with pytest.raises(StoreError, match="missing token file"):
        TokenStore(store)
    summary = rerun(sources, store)
    assert summary.repaired == summary.tokenized == summary.counts["files_seen"]
    assert_like(store, pristine)


def test_a_zero_filled_token_file_opens_but_fails_verify_and_is_repaired(store, sources, pristine):
    """What an older midilm left behind: the truncated file zero-extended back to its size."""
    tokens = file_of(store, "tokens")
    size = tokens.stat().st_size
    kept_rows = size // ROW_BYTES * 2 // 3
    os.truncate(tokens, kept_rows * ROW_BYTES)
    os.truncate(tokens, size)
    opened = TokenStore(store)  # sizes agree; only the checksums can tell
    lost = {r["path"] for r in opened.records if r["offset"] + r["count"] > kept_rows}
    with pytest.raises(StoreError, match=rf"token rows of {len(lost)} file\(s\) .* differ from their checksums"):
        opened.verify()
    summary = rerun(sources, store)
    assert 0 < summary.repaired == len(lost) < summary.counts["files_seen"] and "differed from their checksums" in summary.damage
    assert_like(store, pristine)


def test_bit_rot_inside_one_stream_names_that_file(store):
    opened = TokenStore(store)
    victim = next(r for r in opened.records if r["status"] == "ok" and r["index"] == 3)
    with open(file_of(store, "tokens"), "r+b") as handle:
        handle.seek((victim["offset"] + 1) * ROW_BYTES)
        byte = handle.read(1)[0]
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte ^ 0x04]))
    with pytest.raises(StoreError, match=Path(victim["path"]).name):
        TokenStore(store).verify()


def test_training_refuses_a_damaged_store_before_building_anything(store, tmp_path):
    from midilm.model import preset_config
    from midilm.train import TrainConfig, start_run

    tokens = file_of(store, "tokens")
    size = tokens.stat().st_size
    os.truncate(tokens, 0)
    os.truncate(tokens, size)
    with pytest.raises(StoreError, match="differ from their checksums"):
        start_run(store, tmp_path / "run", preset_config("gpt", "tiny"), TrainConfig(max_steps=1))
    assert not (tmp_path / "run").exists()


# ----- row 7: damaged metadata, each a StoreError naming the file and the field ----------------------------------------


def _set_header(field: str, value) -> Callable[[Path], None]:
    def damage(store: Path) -> None:
        header = header_of(store)
        target = header
        *parents, last = field.split(".")
        for name in parents:
            target = target[name]
        target[last] = value
        write_header(store, header)

    return damage


def _rewritten(key: str, content: Callable[[Path], bytes]) -> Callable[[Path], None]:
    """A damage that replaces the store file ``key`` by ``content(path)`` and records its new checksum."""

    def damage(store: Path) -> None:
        path = file_of(store, key)
        path.write_bytes(content(path))
        rehash(store, key)

    return damage


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _rewrite_index(change: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    return _rewritten("index", lambda path: _npy(change(np.load(path).copy())))


def _index_bytes(data: bytes) -> Callable[[Path], None]:
    return _rewritten("index", lambda path: data)


def _cell(row: int, column: int, value: int) -> Callable[[np.ndarray], np.ndarray]:
    def change(index: np.ndarray) -> np.ndarray:
        index[row, column] = value
        return index

    return change


def _manifest_line(number: int, change: Callable[[dict], object]) -> Callable[[Path], None]:
    def content(path: Path) -> bytes:
        lines = path.read_text().splitlines()
        lines[number] = json.dumps(change(json.loads(lines[number])))
        return ("\n".join(lines) + "\n").encode()

    return _rewritten("manifest", content)


def _manifest_bytes(data: bytes) -> Callable[[Path], None]:
    return _rewritten("manifest", lambda path: data)


def npy_header(text: str) -> bytes:
    """A version 1.0 .npy header holding ``text``, padded as NumPy pads it."""
    body = text.encode("latin1")
    body += b" " * (-(len(body) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body


BIG_NPY_HEADER = npy_header("{'descr': '<i8', 'fortran_order': False, 'shape': (1000000000000, 3), }")

DAMAGE: dict[str, tuple[Callable[[Path], None], str, str]] = {
    # name: (damage, file named in the message, what the message says)
    "rows is a string": (_set_header("rows", "abc"), "store.json", "field rows: expected a row count"),
    "rows is negative": (_set_header("rows", -5), "store.json", "field rows"),
    "rows past int64": (_set_header("rows", 2**70), "store.json", "field rows"),
    "generation is a list": (_set_header("generation", [1]), "store.json", "field generation"),
    "tokens file outside the store": (_set_header("files.tokens", "../../etc/passwd"), "store.json", "field files.tokens"),
    "tokens file a device": (_set_header("files.tokens", "/dev/zero"), "store.json", "field files.tokens"),
    "counts lack by_status": (_set_header("counts", {}), "store.json", "counts.by_status"),
    "header is a list": (lambda s: (s / "store.json").write_text("[1, 2]"), "store.json", "not a midilm token store header"),
    "header is binary": (lambda s: (s / "store.json").write_bytes(b"\xff\xfe\x00{"), "store.json", "unreadable store header"),
    "checksum not hex": (_set_header("checksums.index", "zz"), "store.json", "field checksums.index"),
    "index is empty": (_index_bytes(b""), "index-1.npy", "not a .npy file"),
    "index claims 10^12 rows": (_index_bytes(BIG_NPY_HEADER + bytes(24 * 8)), "index-1.npy", "claims 1000000000000 rows"),
    "index header cut": (_index_bytes(BIG_NPY_HEADER[:30]), "index-1.npy", ".npy header"),
    "index of floats": (_rewrite_index(lambda i: i.astype(np.float64)), "index-1.npy", "field descr"),
    "index of 2 columns": (_rewrite_index(lambda i: i[:, :2].copy()), "index-1.npy", "expected 3 columns"),
    "negative offset": (_rewrite_index(_cell(2, 0, -3)), "index-1.npy", "row 2 (of 8), field offset: -3 is negative"),
    "negative count": (_rewrite_index(_cell(4, 1, -1)), "index-1.npy", "row 4 (of 8), field count: -1 is not positive"),
    "count past the rows": (_rewrite_index(_cell(0, 1, 2**62)), "index-1.npy", "field count: 4611686018427387904 runs past"),
    "unknown split": (_rewrite_index(_cell(1, 2, 7)), "index-1.npy", "field split: 7 is not a split code"),
    "index row missing": (_rewrite_index(lambda i: i[:-1].copy()), "index-1.npy", "lists 7 files"),
    "index checksum": (
        lambda s: file_of(s, "index").write_bytes(file_of(s, "index").read_bytes()[:-8] + b"\x01" * 8),
        "index-1.npy",
        "SHA-256",
    ),
    "manifest is binary": (_manifest_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xd8"), "manifest-1.jsonl line 1", "unreadable store manifest"),
    "manifest line a list": (_manifest_line(3, lambda row: [row]), "manifest-1.jsonl line 4", "expected a JSON object, got list"),
    "status unknown": (_manifest_line(0, lambda row: {**row, "status": "great"}), "manifest-1.jsonl line 1", "field status"),
    "manifest offset negative": (_manifest_line(1, lambda row: {**row, "offset": -8}), "manifest-1.jsonl line 2", "field offset"),
    "manifest count a string": (_manifest_line(1, lambda row: {**row, "count": "12"}), "manifest-1.jsonl line 2", "field count"),
    "manifest disagrees with the index": (
        _manifest_line(2, lambda row: {**row, "count": row["count"] - 1}),
        "manifest-1.jsonl",
        "disagree with the index",
    ),
    "manifest reason missing": (
        _manifest_line(0, lambda row: {k: v for k, v in row.items() if k != "reason"}),
        "line 1",
        "lacks field(s) reason",
    ),
    "an ok row with an error": (
        _manifest_line(0, lambda row: {**row, "error": "forged"}),
        "line 1",
        "fields status 'ok' and error 'forged' disagree",
    ),
    "manifest unsorted": (_manifest_line(1, lambda row: {**row, "path": "/a.mid"}), "manifest-1.jsonl line 2", "field path"),
    "manifest checksum": (
        lambda s: file_of(s, "manifest").write_text(file_of(s, "manifest").read_text().replace('"seconds": ', '"seconds": 1')),
        "manifest-1.jsonl",
        "SHA-256",
    ),
    "identity forged": (_set_header("identity", "0123456789abcdef"), "store.json", "field identity disagrees with the manifest"),
}


def open_completely(path: Path) -> None:
    store = TokenStore(path)
    _ = store.records
    store.verify()


@pytest.mark.parametrize("name", list(DAMAGE))
def test_damaged_metadata_is_a_store_error_naming_file_and_field(name, store, sources, pristine):
    damage, where, reason = DAMAGE[name]
    damage(store)
    with pytest.raises(StoreError) as raised:
        open_completely(store)
    assert where in str(raised.value) and reason in str(raised.value), str(raised.value)
    summary = rerun(sources, store)  # prepare rebuilds or repairs it
    assert summary.committed
    assert_like(store, pristine)


def test_a_fifo_in_place_of_the_header_is_refused_without_hanging(store):
    (store / "store.json").unlink()
    os.mkfifo(store / "store.json")
    with pytest.raises(StoreError, match=r"not a regular file \(a named pipe"):
        TokenStore(store)


def test_every_reader_is_guarded_by_a_validated_reader_not_a_special_case(pristine):
    """The index and manifest are read by one function each, which the writer (prepare) shares with TokenStore."""
    from midilm.data import store as store_module
    from midilm.data import store_files, writer

    assert writer.read_index is store_files.read_index is store_module.read_index
    assert writer.read_manifest is store_files.read_manifest is store_module.read_manifest


# ----- today's stores (no checksums) still open; prepare adds the checksums ---------------------------------------------


def test_a_store_written_before_checksums_opens_and_verifies_by_stream_hashes(tmp_path):
    store = Path(shutil.copytree(LEGACY_STORE, tmp_path / "legacy"))
    assert "checksums" not in header_of(store)
    opened = TokenStore(store)
    opened.verify()
    assert len(opened) == 3 and [r["status"] for r in opened.records].count("duplicate") == 1
    with open(file_of(store, "tokens"), "r+b") as handle:  # its streams are still checked against the manifest's hashes
        handle.seek(5 * ROW_BYTES)
        handle.write(b"\x01\x02")
    with pytest.raises(StoreError, match="differ from their checksums"):
        TokenStore(store).verify()


def test_prepare_adds_checksums_to_a_store_without_them(store, sources, pristine):
    header = header_of(store)
    del header["checksums"]
    write_header(store, header)
    summary = rerun(sources, store)
    assert summary.tokenized == 0 and summary.committed
    assert set(header_of(store)["checksums"]) == {"index", "manifest"}
    assert_like(store, pristine)
    assert not rerun(sources, store).committed  # and then it is left alone


def test_the_golden_files_tokenize_as_stored(store):
    """The fixture store holds the real tokens (so the repairs above compare against the truth)."""
    opened = TokenStore(store)
    for record in opened.records:
        if record["status"] == "ok":
            np.testing.assert_array_equal(opened.tokens(record["index"]), tokenize(record["path"]).tokens)


# ----- the "tried as a new user": a full disk cut the token file, then `midilm prepare`, then `midilm train` --------


def run_cli(*args: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "midilm", *map(str, args)], capture_output=True, text=True, timeout=300, env=env)


def train_args(store: Path, run: Path) -> list[object]:
    return [
        "train",
        "--data",
        store,
        "--arch",
        "gpt",
        "--preset",
        "tiny",
        "--max-steps",
        1,
        "--window-events",
        8,
        "--stride-events",
        4,
        "--out",
        run,
    ]


def test_a_new_user_cuts_the_token_file_then_prepares_and_trains(store, sources, tmp_path):
    tokens = file_of(store, "tokens")
    os.truncate(tokens, tokens.stat().st_size // 2)

    refused = run_cli(*train_args(store, tmp_path / "too-early"))  # training first: told what happened and what to do
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-1500:]
    assert "truncated token file" in refused.stderr and "run `midilm prepare` on its sources again" in refused.stderr
    assert not (tmp_path / "too-early" / "last").exists()

    repaired = run_cli("prepare", sources, "--out", store, "--workers", 1, "--quiet")
    assert repaired.returncode == 0 and "repaired: tokens-1.u16 holds" in repaired.stdout, repaired.stdout + repaired.stderr

    trained = run_cli(*train_args(store, tmp_path / "run"))
    assert trained.returncode == 0, trained.stderr[-1500:]
    first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["train_loss"] > 1.0  # real tokens: an untrained model's loss is about ln(3406) = 8.1, PAD rows would give 0


def test_a_store_zero_filled_by_an_older_midilm_is_never_trained_on(store, tmp_path):
    tokens = file_of(store, "tokens")
    size = tokens.stat().st_size
    os.truncate(tokens, size // 2)
    os.truncate(tokens, size)
    refused = run_cli(*train_args(store, tmp_path / "run"))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-1500:]
    assert "differ from their checksums" in refused.stderr and "midilm prepare" in refused.stderr
    assert not (tmp_path / "run" / "last").exists()


@pytest.mark.parametrize(
    ("head", "entry"),
    [
        ([1, 2], None),
        ({"journal": 1, "tokens": "../outside.u16"}, None),
        (None, {"path": "/x.mid", "error": None}),
        (None, {"path": "/x.mid", "count": "many"}),
    ],
)
def test_a_damaged_journal_is_ignored_not_followed(head, entry, store, sources, pristine):
    """A journal whose head is not an object or names a token file outside the store, or whose entries lack
    fields, is dropped: its files are tokenized again and nothing is written outside the store."""
    header = header_of(store)
    good_head = {"journal": 1, "tokenizer": header["tokenizer"], "tokens": header["files"]["tokens"]}
    if isinstance(head, dict):
        head = {**good_head, **head}
    first = json.loads(file_of(store, "manifest").read_text().splitlines()[0])
    lines = [head if head is not None else good_head, {**first, **(entry or {})}]
    (store / "journal.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    rerun(sources, store)
    assert_like(store, pristine)
    assert not (store.parent / "outside.u16").exists()
