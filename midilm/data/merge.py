"""Merge stores prepared separately (``--shard i/n`` on several machines) into one.

The merged store is what one ``prepare`` of all the sources would have built:
per-file results are pooled, each distinct token stream is copied once, and
duplicates, splits and the index are resolved again over the union.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from midilm.data.manifest import counts, identity, resolve, result_of
from midilm.data.prepare import PrepareOptions, PrepareSummary, split_settings
from midilm.data.split import SplitFile
from midilm.data.store import TokenStore
from midilm.data.store_files import HEADER_FILE
from midilm.data.writer import StoreWriter
from midilm.errors import ConfigError, StoreError


def _merged_settings(stores: list[TokenStore], options: PrepareOptions | None) -> tuple[dict[str, Any], SplitFile | None]:
    if options is not None:
        split_file = SplitFile(options.split_file) if options.split_file else None
        return split_settings(options, split_file), split_file
    settings = stores[0].header.get("settings")
    for store in stores:
        if store.header.get("settings") is None:
            raise ConfigError(
                f"{store.path}: its header records no split settings; give --split-ratios/--split-file/--quality-filter explicitly"
            )
        if store.header["settings"] != settings:
            raise ConfigError(
                f"{store.path} was prepared with other split settings than {stores[0].path}; give --split-ratios/--split-file/--quality-filter explicitly"
            )
    split_file = None
    if settings["split_file"]:
        split_file = SplitFile(settings["split_file"])
        if split_file.text_sha256 != settings["split_file_sha256"]:
            raise ConfigError(f"--split-file {settings['split_file']} changed since the shards were prepared; give it explicitly")
    return settings, split_file


def merge(
    inputs: Sequence[str | os.PathLike], out: str | os.PathLike, options: PrepareOptions | None = None, *, progress: bool = True
) -> PrepareSummary:
    """Merge the stores ``inputs`` into a new store at ``out``.

    ``options`` None keeps the split settings the inputs share; only their
    split-related fields are used. An interrupted merge resumes when run again.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    if not inputs:
        raise ConfigError("--merge needs at least one store")
    out_path = Path(out)
    if (out_path / HEADER_FILE).exists():
        raise StoreError(f"{out_path}: already holds a store; merge into a new folder")
    stores = [TokenStore(p) for p in inputs]
    for store in stores:
        store.verify()  # a damaged shard must not spread into the merged store
    spec = stores[0].tokenizer_spec
    for store in stores[1:]:
        if store.tokenizer_spec != spec:
            raise StoreError(
                f"{store.path}: built with other tokenizer options or version than {stores[0].path}; stores to merge must share them"
            )
    settings, split_file = _merged_settings(stores, options)
    summary = PrepareSummary(out=str(out_path), identity="", counts={})
    with StoreWriter(out_path, spec) as writer:
        results = {path: result_of(entry, path) for path, entry in writer.journaled.items()}
        summary.resumed = len(results)
        provenance = {}
        total = sum(len(store.records) for store in stores)
        with tqdm(total=total, unit="file", desc="merging", disable=not progress) as bar:
            for store in stores:
                for row in store.records:
                    bar.update()
                    path = row["path"]
                    provenance[path] = (row.get("licence"), row.get("origin"))
                    if path in results:
                        if results[path]["sha256"] != row["sha256"]:
                            raise StoreError(f"{path}: in several stores with different contents ({store.path} and an earlier one)")
                        continue
                    stored = row.get("count") and writer.has_stream(row["tokens_sha256"])
                    rows = store.rows(row["offset"], row["count"]) if row.get("count") and not stored else None
                    results[path] = result_of(writer.append(result_of(row, path), rows), path)
                    summary.reused += 1
        rows, index = resolve(
            list(results.values()),
            ratios=settings["split_ratios"],
            split_file=split_file,
            quality_filter=settings["quality_filter"],
            provenance=provenance,
        )
        summary.identity = identity(spec, rows)
        summary.counts = counts(rows)
        writer.commit(
            rows,
            index,
            {"identity": summary.identity, "counts": summary.counts, "settings": settings, "merged_from": [str(s.path) for s in stores]},
        )
    summary.seconds = time.perf_counter() - started
    return summary
