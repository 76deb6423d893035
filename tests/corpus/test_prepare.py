"""prepare: bad files, duplicates, splits, incremental reruns, quality filter, limit, shards and merge."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from midilm.data import PrepareOptions, TokenStore, discover, merge, prepare, select
from midilm.data.split import hash_split
from midilm.errors import ConfigError, StoreError
from midilm.tokenizer import TokenizerOptions, check_quality


def test_bad_files_are_recorded_and_the_run_completes(build, pieces, golden_dir, by_name):
    good = (pieces / "bach_bwv1.6.mid").read_bytes()
    (pieces / "empty.mid").write_bytes(b"")
    (pieces / "truncated.mid").write_bytes(good[:30])
    (pieces / "half.mid").write_bytes(good[: len(good) // 2])
    (pieces / "notes.MIDI").write_text("these are notes about the pieces, not MIDI\n")
    shutil.copy(golden_dir / "edge_not_midi.mid", pieces / "corrupt.mid")
    (pieces / "readme.txt").write_text("not a MIDI name: never read")
    store, summary = build([pieces], pieces.parent / "store")
    rows = by_name(store)
    assert "readme.txt" not in rows
    for name in ("empty.mid", "truncated.mid", "notes.MIDI", "corrupt.mid"):
        assert rows[name]["status"] == "error", name
        assert rows[name]["reason"] and rows[name]["split"] is None and rows[name]["index"] is None
    assert rows["truncated.mid"]["reason"].startswith("no notes")
    half = rows["half.mid"]  # the tokenizer keeps the complete chunks and says what it ignored
    assert half["status"] == "ok" and half["warnings"] and half["notes"] < rows["bach_bwv1.6.mid"]["notes"]
    assert summary.counts["by_status"] == {"ok": 9, "duplicate": 0, "error": 4, "filtered": 0}
    assert sum(summary.counts["errors_by_kind"].values()) == 4
    assert "errors" in summary.format()


def test_missing_sources_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such file or folder"):
        prepare([tmp_path / "nowhere"], tmp_path / "store", progress=False)
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(ConfigError, match="no MIDI files"):
        prepare([tmp_path / "empty_folder"], tmp_path / "store", progress=False)


def test_both_kinds_of_duplicates_are_stored_once(build, pieces, text_variant, by_name):
    original = pieces / "bach_bwv1.6.mid"
    (pieces / "a").mkdir()
    shutil.copy(original, pieces / "a" / "copy.mid")
    (pieces / "z_retitled.mid").write_bytes(text_variant(original.read_bytes(), "another title"))
    store, summary = build([pieces], pieces.parent / "store")
    rows = by_name(store)
    kept = rows["bach_bwv1.6.mid"]  # "a/copy.mid" sorts first: it is the one kept
    copy = rows["copy.mid"]
    assert copy["status"] == "ok"
    assert kept["status"] == "duplicate" and kept["duplicate_of"] == copy["path"] and kept["reason"].startswith("same bytes")
    retitled = rows["z_retitled.mid"]
    assert retitled["status"] == "duplicate" and retitled["duplicate_of"] == copy["path"] and retitled["reason"].startswith("same tokens")
    assert kept["split"] == retitled["split"] == copy["split"]
    assert len(store) == 8 and summary.counts["by_status"]["duplicate"] == 2
    assert store.n_events == sum(r["count"] for r in store.records if r["status"] == "ok")


def test_split_is_a_function_of_the_tokens_and_stable_under_additions(build, copy_golden, golden_dir, tmp_path, by_name):
    folder = tmp_path / "corpus"
    copy_golden(folder, ["bach_bwv1.6", "folk_essen_altdeu10_1", "m21_test01"])
    first = by_name(build([folder], tmp_path / "store")[0])
    for row in first.values():
        assert row["split"] == hash_split(row["tokens_sha256"], (0.8, 0.1, 0.1))
    copy_golden(folder)
    for name in ("bach_bwv108.6", "bach_bwv11.6", "bach_bwv110.7", "bach_bwv111.6"):
        shutil.copy(golden_dir / f"{name}.mid", folder / f"{name}.mid")
    second = by_name(build([folder], tmp_path / "store")[0])
    assert len(second) == 12
    for name, row in first.items():
        assert second[name]["split"] == row["split"]
    elsewhere = by_name(build([folder], tmp_path / "other")[0])
    assert {n: r["split"] for n, r in elsewhere.items()} == {n: r["split"] for n, r in second.items()}


def test_split_ratios_and_split_file(build, pieces, tmp_path, by_name):
    rows = by_name(build([pieces], tmp_path / "all_train", split_ratios=(1.0, 0.0, 0.0))[0])
    assert {r["split"] for r in rows.values()} == {"train"}
    split_file = tmp_path / "split.csv"
    split_file.write_text("midi_filename,split,year\npieces/bach_bwv1.6.mid,test,2004\nbach_bwv10.7.mid,validation,2004\n")
    store = build([pieces], tmp_path / "listed", split_ratios=(1.0, 0.0, 0.0), split_file=str(split_file))[0]
    rows = by_name(store)
    assert rows["bach_bwv1.6.mid"]["split"] == "test" and rows["bach_bwv10.7.mid"]["split"] == "val"
    assert {r["split"] for n, r in rows.items() if n not in ("bach_bwv1.6.mid", "bach_bwv10.7.mid")} == {"train"}
    assert store.split("test").tolist() == [rows["bach_bwv1.6.mid"]["index"]]
    with pytest.raises(ConfigError, match="split-ratios"):
        build([pieces], tmp_path / "bad", split_ratios=(0.5, 0.5))


def test_incremental_reruns(build, pieces, golden_dir, tmp_path, by_name):
    out = tmp_path / "store"
    first, summary = build([pieces], out)
    assert summary.tokenized == 8

    again, summary = build([pieces], out)
    assert (summary.tokenized, summary.reused, summary.committed) == (0, 8, False)
    assert again.identity == first.identity and again.header["generation"] == first.header["generation"]

    shutil.copy(golden_dir / "bach_bwv108.6.mid", pieces / "new.mid")
    (pieces / "m21_test01.mid").unlink()
    changed = pieces / "bach_bwv10.7.mid"
    changed.write_bytes((golden_dir / "bach_bwv11.6.mid").read_bytes())
    os.utime(pieces / "bach_bwv1.6.mid")  # touched, same bytes: reused without tokenizing
    store, summary = build([pieces], out)
    assert (summary.tokenized, summary.removed, summary.reused) == (2, 1, 6)
    rows = by_name(store)
    assert "m21_test01.mid" not in rows
    np.testing.assert_array_equal(
        store.tokens(rows["bach_bwv10.7.mid"]["index"]), np.load(golden_dir / "bach_bwv11.6.opt.npy").astype(np.uint16)
    )
    fresh = build([pieces], tmp_path / "fresh")[0]
    assert store.identity == fresh.identity
    assert [r["tokens_sha256"] for r in store.records] == [r["tokens_sha256"] for r in fresh.records]


def test_tokenizer_options_change_rebuilds(pieces, tmp_path, golden_dir):
    out = tmp_path / "store"
    prepare([pieces], out, PrepareOptions(workers=1), progress=False)
    summary = prepare([pieces], out, PrepareOptions(workers=1), TokenizerOptions(optimise=False), progress=False)
    assert summary.tokenized == 8 and "tokenizer" in summary.rebuilt_because
    store = TokenStore(out)
    assert store.tokenizer_spec == TokenizerOptions(optimise=False).spec()
    record = next(r for r in store.records if r["path"].endswith("bach_bwv1.6.mid"))
    np.testing.assert_array_equal(store.tokens(record["index"]).astype(np.int64), np.load(golden_dir / "bach_bwv1.6.raw.npy"))
    assert sorted(p.name for p in out.iterdir()) == ["index-2.npy", "lock", "manifest-2.jsonl", "store.json", "tokens-2.u16"]


def test_quality_filter_moves_failing_files_out_of_the_splits(build, pieces, tmp_path, by_name):
    plain = by_name(build([pieces], tmp_path / "plain")[0])
    failing = {name for name, row in plain.items() if not row["quality_ok"]}
    assert failing, "the golden pieces include short chorales that fail total_min"
    for row in plain.values():
        ok, reasons = check_quality(TokenStore(tmp_path / "plain").tokens(row["index"]))
        assert (row["quality_ok"], row["quality_reasons"]) == (ok, reasons)
    store, summary = build([pieces], tmp_path / "plain", quality_filter=True)
    assert summary.tokenized == 0  # the verdict is stored: no re-tokenizing
    rows = by_name(store)
    assert {n for n, r in rows.items() if r["status"] == "filtered"} == failing
    assert all(rows[n]["split"] is None and rows[n]["reason"].startswith("quality:") for n in failing)
    assert len(store) == len(plain) - len(failing)


def test_limit_takes_a_deterministic_sample(pieces, tmp_path):
    files = discover([pieces])
    sample = select(files, limit=3)
    assert len(sample) == 3 and set(sample) == set(select(list(reversed(files)), limit=3))
    moved = tmp_path / "elsewhere"
    shutil.copytree(pieces, moved)
    assert [f.key for f in select(discover([moved]), limit=3)] == [f.key for f in sample]
    with pytest.raises(ConfigError, match="limit"):
        select(files, limit=0)


def test_sources_folders_files_and_lists(pieces, tmp_path):
    (pieces / "deep" / "er").mkdir(parents=True)
    shutil.copy(pieces / "m21_test01.mid", pieces / "deep" / "er" / "UPPER.MID")
    listing = tmp_path / "list.txt"
    listing.write_text("# my favourites\npieces/bach_bwv1.6.mid\n\npieces/deep\nmissing.mid\n")
    files = discover([listing, pieces / "bach_bwv10.7.mid"])
    names = [Path(f.path).name for f in files]
    assert names == sorted(names, key=lambda n: [f.path for f in files][names.index(n)])
    assert set(names) == {"bach_bwv1.6.mid", "UPPER.MID", "missing.mid", "bach_bwv10.7.mid"}
    assert len(discover([pieces])) == 9
    binary = tmp_path / "song.kar"
    binary.write_bytes(b"MThd\x00\x00\x00\x06\xff\xfe")
    with pytest.raises(ConfigError, match="neither a .mid/.midi file nor a text file"):
        discover([binary])


def test_missing_listed_file_is_an_error_row(build, pieces, tmp_path, by_name):
    listing = tmp_path / "list.txt"
    listing.write_text("pieces/bach_bwv1.6.mid\nmissing.mid\n")
    rows = by_name(build([listing], tmp_path / "store")[0])
    assert rows["missing.mid"]["status"] == "error" and "cannot read" in rows["missing.mid"]["reason"]


def test_shards_merge_into_the_full_store(build, pieces, text_variant, tmp_path):
    (pieces / "retitled.mid").write_bytes(text_variant((pieces / "bach_bwv1.6.mid").read_bytes(), "x"))
    full = build([pieces], tmp_path / "full")[0]
    shards = [build([pieces], tmp_path / f"shard{i}", shard=f"{i}/3")[0] for i in range(3)]
    assert sum(len(s.records) for s in shards) == len(full.records)
    summary = merge([s.path for s in shards], tmp_path / "merged", progress=False)
    merged = TokenStore(tmp_path / "merged")
    assert merged.identity == full.identity == summary.identity
    strip = lambda rows: [{k: v for k, v in r.items() if k != "offset"} for r in rows]  # noqa: E731
    assert strip(merged.records) == strip(full.records)
    for i in range(len(full)):
        np.testing.assert_array_equal(merged.tokens(i), full.tokens(i))
    assert merged.header["rows"] == full.header["rows"]  # the duplicate's stream copied once
    with pytest.raises(StoreError, match="already holds a store"):
        merge([s.path for s in shards], tmp_path / "merged", progress=False)


def test_merge_refuses_other_tokenizer_options(pieces, tmp_path):
    prepare([pieces], tmp_path / "a", PrepareOptions(workers=1), progress=False)
    prepare([pieces], tmp_path / "b", PrepareOptions(workers=1), TokenizerOptions(cc_eps=0), progress=False)
    with pytest.raises(StoreError, match="other tokenizer options"):
        merge([tmp_path / "a", tmp_path / "b"], tmp_path / "c", progress=False)


def test_a_second_writer_is_refused(pieces, tmp_path):
    from midilm.data.writer import StoreWriter

    with StoreWriter(tmp_path / "store", TokenizerOptions().spec()):
        with pytest.raises(StoreError, match="being written by midilm prepare"):
            prepare([pieces], tmp_path / "store", PrepareOptions(workers=1), progress=False)


def test_parallel_workers_give_the_same_store(build, pieces, tmp_path):
    one = build([pieces], tmp_path / "one")[0]
    two = build([pieces], tmp_path / "two", workers=2)[0]
    assert one.identity == two.identity
    assert [r["tokens_sha256"] for r in one.records] == [r["tokens_sha256"] for r in two.records]


def test_rows_left_unreferenced_are_compacted_away(build, pieces, golden_dir, tmp_path):
    out = tmp_path / "store"
    build([pieces], out)
    store, summary = build([pieces / "bach_bwv1.6.mid"], out)
    assert summary.removed == 7
    assert store.header["files"]["tokens"] == "tokens-2.u16" and store.header["rows"] == len(store.tokens(0))
    assert sorted(p.name for p in out.iterdir()) == ["index-2.npy", "lock", "manifest-2.jsonl", "store.json", "tokens-2.u16"]
    np.testing.assert_array_equal(store.tokens(0), np.load(golden_dir / "bach_bwv1.6.opt.npy").astype(np.uint16))
    grown, summary = build([pieces], out)
    assert summary.tokenized == 7 and len(grown) == 8
    assert grown.identity == build([pieces], tmp_path / "fresh")[0].identity
