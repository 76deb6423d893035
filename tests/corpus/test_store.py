"""TokenStore: the API, exact tokens against the golden oracle, and clear errors on bad stores."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from midilm import vocab
from midilm.data import SPLITS, TokenStore
from midilm.errors import StoreError
from midilm.tokenizer import TokenizerOptions, tokenize


@pytest.fixture
def store(build, pieces, tmp_path) -> TokenStore:
    return build([pieces], tmp_path / "store")[0]


def test_store_holds_the_golden_tokens_exactly(store, golden_dir, golden_pieces):
    assert len(store) == len(golden_pieces)
    for record in store.records:
        assert record["status"] == "ok"
        expected = np.load(golden_dir / (Path(record["path"]).stem + ".opt.npy"))
        got = store.tokens(record["index"])
        assert got.dtype == vocab.TOKEN_DTYPE
        np.testing.assert_array_equal(got.astype(np.int64), expected.astype(np.int64))


def test_records_carry_the_manifest_fields(store, pieces):
    record = store.records[0]
    assert record["path"] == (pieces / "bach_bwv1.6.mid").as_posix()
    for field in (
        "status",
        "reason",
        "split",
        "index",
        "sha256",
        "size",
        "events",
        "notes",
        "seconds",
        "dropped",
        "quality_ok",
        "quality_reasons",
        "licence",
    ):
        assert field in record
    assert record["size"] == (pieces / "bach_bwv1.6.mid").stat().st_size
    assert record["events"] == record["count"] - 2  # BOS and EOS rows are not events
    assert record["notes"] > 0 and record["seconds"] > 0
    assert [r["index"] for r in store.records] == list(range(len(store)))


def test_splits_partition_the_files_and_match_the_records(store):
    indices = np.concatenate([store.split(name) for name in SPLITS])
    assert sorted(indices.tolist()) == list(range(len(store)))
    for name in SPLITS:
        assert {r["index"] for r in store.records if r["split"] == name} == set(store.split(name).tolist())
    with pytest.raises(StoreError, match="unknown split 'dev'"):
        store.split("dev")


def test_header_facts(store):
    assert store.tokenizer_spec == TokenizerOptions().spec()
    assert len(store.identity) == 16
    assert TokenStore(store.path).identity == store.identity
    assert store.n_events == sum(r["count"] for r in store.records)
    assert store.counts["by_status"]["ok"] == len(store)


def test_store_pickles_as_its_path(store):
    blob = pickle.dumps(store)
    assert len(blob) < 1000  # the path, not the tokens
    copy = pickle.loads(blob)
    np.testing.assert_array_equal(copy.tokens(3), store.tokens(3))


def test_tokens_are_read_only_views(store):
    with pytest.raises((ValueError, TypeError)):
        store.tokens(0)[0, 0] = 5
    with pytest.raises(IndexError, match="out of range"):
        store.tokens(len(store))


def test_missing_and_corrupt_stores_raise_store_error(store, tmp_path):
    with pytest.raises(StoreError, match="no token store here"):
        TokenStore(tmp_path / "nothing")

    header_path = store.path / "store.json"
    header = json.loads(header_path.read_text())

    header_path.write_text("{not json")
    with pytest.raises(StoreError, match="unreadable store header"):
        TokenStore(store.path)

    header_path.write_text(json.dumps({**header, "format_version": 99}))
    with pytest.raises(StoreError, match="format version 99"):
        TokenStore(store.path)

    header_path.write_text(json.dumps({k: v for k, v in header.items() if k != "rows"}))
    with pytest.raises(StoreError, match=r"lacks field\(s\) rows"):
        TokenStore(store.path)

    header_path.write_text(json.dumps(header))
    (store.path / header["files"]["manifest"]).write_text('{"path": "cut')
    with pytest.raises(StoreError, match="manifest file.s SHA-256 differs"):
        _ = TokenStore(store.path).records

    tokens_path = store.path / header["files"]["tokens"]
    tokens_path.write_bytes(tokens_path.read_bytes()[:100])
    with pytest.raises(StoreError, match="truncated token file"):
        TokenStore(store.path)


def test_store_tokens_equal_a_direct_tokenize(build, golden_dir, tmp_path):
    """Every golden file the tokenizer accepts lands in the store unchanged."""
    store = build([golden_dir], tmp_path / "all")[0]
    for record in store.records:
        if record["status"] == "ok":
            np.testing.assert_array_equal(store.tokens(record["index"]), tokenize(record["path"]).tokens)


def test_a_full_disk_is_a_store_error(tmp_path):
    import errno

    from midilm.data.writer import StoreWriter
    from midilm.tokenizer import TokenizerOptions

    class FullDisk:
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):
            pass

        closed = False

    with StoreWriter(tmp_path / "store", TokenizerOptions().spec()) as writer:
        writer._tokens = FullDisk()
        with pytest.raises(StoreError, match="no space left on the device"):
            writer.append({"path": "a.mid", "tokens_sha256": "00"}, np.ones((3, vocab.EVENT_LEN), dtype=np.uint16))
