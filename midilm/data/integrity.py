"""Checking a store's token rows against the checksums its manifest records.

Every stored token stream has its SHA-256 (``tokens_sha256``) in the
manifest, and the manifest's own SHA-256 is in the header: hashing each
stream's rows where the index says they are proves the token file holds what
was written, whatever happened to it since (a full disk, a copy cut short,
an older midilm that zero-extended a truncated file). Reading the whole
token file is too slow for every open, so :meth:`TokenStore.verify`,
``prepare`` and training do it, not the constructor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from midilm import vocab
from midilm.data.store_files import ROW_BYTES, ROW_DTYPE


def stream_sha256(rows: np.ndarray) -> str:
    """SHA-256 of event rows as little-endian uint16 bytes: a manifest's ``tokens_sha256``."""
    return hashlib.sha256(np.ascontiguousarray(rows, dtype=ROW_DTYPE).data).hexdigest()


def physical_rows(path: Path) -> np.ndarray:
    """Every whole row a token file holds now, memory-mapped read-only (none if it is missing or empty)."""
    try:
        n_rows = path.stat().st_size // ROW_BYTES
    except OSError:
        n_rows = 0
    if n_rows == 0:
        return np.zeros((0, vocab.EVENT_LEN), dtype=ROW_DTYPE)
    return np.memmap(path, dtype=ROW_DTYPE, mode="r", shape=(n_rows, vocab.EVENT_LEN))


def damaged_streams(tokens: np.ndarray, entries: Iterable[dict[str, Any]]) -> set[str]:
    """The ``tokens_sha256`` of the entries (manifest rows or journal entries)
    whose rows ``[offset, offset + count)`` are not all in ``tokens`` or do not
    hash to it. Entries without rows are skipped; a stream shared by several
    entries is hashed once."""
    segments = {(e["tokens_sha256"], e["offset"], e["count"]) for e in entries if e.get("count")}
    damaged = set()
    for digest, offset, count in segments:
        if offset + count > len(tokens) or stream_sha256(tokens[offset : offset + count]) != digest:
            damaged.add(digest)
    return damaged
