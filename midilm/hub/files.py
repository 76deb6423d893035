"""Reading the files of model folders: JSON configs, and the content hash that ties an adapter to its base."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from midilm.errors import CheckpointError

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


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from a file, or a CheckpointError naming the file and what is wrong."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise CheckpointError(f"{path}: the {what} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: the {what} must be a JSON object, got {type(data).__name__}")
    return data
