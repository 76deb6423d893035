"""From per-file results to the manifest of a store: duplicates, splits, filter, index.

A pure function of the results, so that a store built in one run, resumed
after a crash, extended incrementally or merged from shards ends up with
exactly the same manifest, index and identity.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from midilm import vocab
from midilm.data.split import SplitFile, hash_split
from midilm.data.store_files import RESULT_FIELDS, SPLITS, STATUSES


def result_of(entry: dict[str, Any], path: str) -> dict[str, Any]:
    """The per-file result held in a manifest row or journal entry, under ``path``."""
    return {"path": path, **{name: entry.get(name) for name in RESULT_FIELDS}}


def resolve(
    results: Sequence[dict[str, Any]],
    *,
    ratios: Sequence[float],
    split_file: SplitFile | None = None,
    quality_filter: bool = False,
    provenance: dict[str, tuple[str | None, str | None]] | None = None,
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Manifest rows (path order) and the int64 [n, 3] index of tokenized files.

    Among files with identical token streams (identical bytes included) the
    first path in sorted order is kept and the others become ``duplicate``
    of it, sharing its split, so no piece is in two splits. Kept files fail
    the quality check -> ``filtered`` when ``quality_filter``. ``provenance``
    maps a path to its (licence, origin).
    """
    provenance = provenance or {}
    kept_by_tokens: dict[str, dict[str, Any]] = {}
    rows = []
    index_rows = []
    for result in sorted(results, key=lambda r: r["path"]):
        licence, origin = provenance.get(result["path"], (None, None))
        row: dict[str, Any] = {
            "path": result["path"],
            "status": "ok",
            "reason": "",
            "duplicate_of": None,
            "split": None,
            "index": None,
            **{name: result.get(name) for name in RESULT_FIELDS},
            "licence": licence,
            "origin": origin,
        }
        if result.get("error"):
            row.update(status="error", reason=result["error"])
        elif result["tokens_sha256"] in kept_by_tokens:
            first = kept_by_tokens[result["tokens_sha256"]]
            same = "bytes" if first["sha256"] == result["sha256"] else "tokens"
            row.update(status="duplicate", reason=f"same {same} as {first['path']}", duplicate_of=first["path"], split=first["split"])
        else:
            kept_by_tokens[result["tokens_sha256"]] = row
            listed = split_file.split_of(row["path"]) if split_file else None
            row["split"] = listed or hash_split(result["tokens_sha256"], ratios)
            if quality_filter and not result["quality_ok"]:
                row.update(status="filtered", reason="quality: " + "; ".join(result["quality_reasons"]))
        if row["status"] == "ok":
            row["index"] = len(index_rows)
            index_rows.append((result["offset"], result["count"], SPLITS.index(row["split"])))
        rows.append(row)
    for row in rows:  # a filtered file's duplicates belong to no split either
        if row["status"] == "filtered" or (row["status"] == "duplicate" and kept_by_tokens[row["tokens_sha256"]]["status"] == "filtered"):
            row["split"] = None
    index = np.array(index_rows, dtype=np.int64).reshape(-1, 3)
    return rows, index


def identity(tokenizer_spec: dict[str, Any], rows: Sequence[dict[str, Any]]) -> str:
    """A short hash of the tokenizer spec and, per tokenized file in index
    order, its token hash and split: what a model trained on the store saw."""
    digest = hashlib.sha256(json.dumps(tokenizer_spec, sort_keys=True).encode())
    for row in rows:
        if row["status"] == "ok":
            digest.update(f"{row['tokens_sha256']}:{row['split']}\n".encode())
    return digest.hexdigest()[:16]


def reason_kind(reason: str) -> str:
    """The kind of an error, for the summary: its reason with every number
    replaced by N, so that "track 3: ... at byte 31" and "track 0: ... at
    byte 7" count together."""
    return re.sub(r"\d+", "N", reason).strip() or "unknown"


def counts(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Files per status, errors per kind, dropped events per reason, and per split
    the files, events (BOS/EOS excluded) and tokens (all rows x 8) of tokenized files."""
    by_status = Counter(row["status"] for row in rows)
    errors = Counter(reason_kind(row["reason"]) for row in rows if row["status"] == "error")
    dropped: Counter[str] = Counter()
    splits = {name: {"files": 0, "events": 0, "tokens": 0} for name in SPLITS}
    for row in rows:
        if row["status"] == "ok":
            dropped.update(row.get("dropped") or {})
            entry = splits[row["split"]]
            entry["files"] += 1
            entry["events"] += row["events"]
            entry["tokens"] += row["count"] * vocab.EVENT_LEN
    return {
        "files_seen": len(rows),
        "by_status": {status: by_status.get(status, 0) for status in STATUSES},
        "errors_by_kind": dict(errors.most_common()),
        "dropped_events": dict(dropped.most_common()),
        "splits": splits,
    }
