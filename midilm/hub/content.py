"""The content hash that ties an adapter to the base it was trained on."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK_BYTES = 1 << 22
_known: dict[tuple[str, int, int], str] = {}
"""Hashes already computed in this process, by (path, size, modification time)."""


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (a weights file of a few hundred MB takes about a second)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _known:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                digest.update(chunk)
        _known[key] = digest.hexdigest()
    return _known[key]
