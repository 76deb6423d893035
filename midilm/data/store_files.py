"""The files of a token store: their names, their formats, and one validated reader for each.

``docs/store-format.md`` specifies the files. A store may have been damaged
by a full disk, a copy cut short or a hand edit, or may come from someone
else: every reader here checks what it reads against the format and against
the header (types, ranges, sizes, checksums when the header records them)
and raises a :class:`StoreError` naming the file and the field, so that
nothing downstream ever sees a negative offset, a row past the end of the
token file, or a manifest line that is not an object.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from midilm import vocab
from midilm.errors import StoreError
from midilm.files import open_regular
from midilm.npyfile import read_npy
from midilm.validate import (
    COUNT,
    FLAG,
    INTEGER,
    LIST,
    NUMBER,
    OBJECT,
    POSITIVE,
    SHA256,
    TEXT,
    Check,
    check_object,
    list_of,
    one_of,
    optional,
    shown,
)

FORMAT = "midilm-token-store"
FORMAT_VERSION = 1
HEADER_FILE = "store.json"
SPLITS: tuple[str, ...] = ("train", "val", "test")
"""Split names; a split's code in the index is its position here."""
STATUSES: tuple[str, ...] = ("ok", "duplicate", "error", "filtered")
ROW_DTYPE = np.dtype("<u2")
ROW_BYTES = vocab.EVENT_LEN * ROW_DTYPE.itemsize
INDEX_DTYPE = np.dtype("<i8")
INDEX_COLUMNS: tuple[str, ...] = ("offset", "count", "split")
"""Columns of the int64 index: first event row, number of rows, split code."""
FILE_KEYS: tuple[str, ...] = ("tokens", "index", "manifest")
CHECKSUM_KEYS: tuple[str, ...] = ("index", "manifest")
"""Files whose SHA-256 the header records (stores written before checksums existed have none)."""
HEADER_MAX_BYTES = 64 << 20
"""A header is a few kilobytes; a larger ``store.json`` is not one (and is not read into memory)."""

REQUIRED_HEADER_KEYS: tuple[str, ...] = ("generation", "tokenizer", "files", "rows", "identity", "counts")


def _is_file_name(value: Any) -> bool:
    """A plain name inside the store folder: a header naming ``../x`` or ``/dev/zero`` is refused."""
    return isinstance(value, str) and value not in ("", ".", "..") and "/" not in value and "\\" not in value and "\0" not in value


FILE_NAME = Check((str,), "a file name inside the store folder", _is_file_name)
MAX_ROWS = 1 << 48
"""More event rows than any disk holds (4 PiB of tokens): a larger ``rows`` is damage, and would overflow int64 arithmetic."""
ROWS = Check((int,), "a row count from 0 to 2^48", lambda v: 0 <= v <= MAX_ROWS)
HEADER_FIELDS: dict[str, Check] = {
    "generation": POSITIVE,
    "rows": ROWS,
    "identity": TEXT,
    "tokenizer": OBJECT,
    "counts": OBJECT,
    "files": OBJECT,
    "settings": OBJECT,
    "checksums": OBJECT,
    "vocab": OBJECT,
}
SETTINGS_FIELDS: dict[str, Check] = {
    "split_ratios": list_of(NUMBER),
    "split_file": optional(TEXT),
    "split_file_sha256": optional(TEXT),
    "quality_filter": FLAG,
}
RESULT_FIELDS: dict[str, Check] = {
    "sha256": optional(SHA256),
    "size": optional(COUNT),
    "mtime_ns": optional(INTEGER),
    "error": optional(TEXT),
    "tokens_sha256": optional(SHA256),
    "offset": optional(COUNT),
    "count": optional(POSITIVE),
    "events": optional(COUNT),
    "notes": optional(COUNT),
    "seconds": optional(NUMBER),
    "dropped": optional(OBJECT),
    "warnings": optional(LIST),
    "quality_ok": optional(FLAG),
    "quality_reasons": optional(LIST),
}
"""What tokenizing one file yields besides its path (reusable across runs), and what each field holds."""
MANIFEST_FIELDS: dict[str, Check] = {
    "path": TEXT,
    "status": one_of(STATUSES),
    "reason": TEXT,
    "duplicate_of": optional(TEXT),
    "split": optional(one_of(SPLITS)),
    "index": optional(COUNT),
    **RESULT_FIELDS,
    "licence": optional(TEXT),
    "origin": optional(TEXT),
}
"""Every manifest field and what it holds (see docs/store-format.md); a row holds them all."""
STORED_FIELDS: dict[str, Check] = {"tokens_sha256": SHA256, "offset": COUNT, "count": POSITIVE}
"""Fields a row with token rows (an ``ok``, ``duplicate`` or ``filtered`` file) must hold, not null."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_file(path: Path, what: str, *, limit: int | None = None) -> bytes:
    try:
        with open_regular(path) as handle:
            data = handle.read(-1 if limit is None else limit + 1)
    except FileNotFoundError:
        raise StoreError(f"{path}: missing {what}") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from exc
    if limit is not None and len(data) > limit:
        raise StoreError(f"{path}: {what} is over {limit >> 20} MiB: not a store's {what}")
    return data


def _check_checksum(path: Path, data: bytes, header: dict[str, Any], key: str) -> None:
    expected = header.get("checksums", {}).get(key)
    if expected is not None and sha256_of(data) != expected:
        raise StoreError(f"{path}: the {key} file's SHA-256 differs from the one in {HEADER_FILE}: the file was damaged or replaced")


def read_header(folder: Path) -> dict[str, Any]:
    """The parsed and checked ``store.json`` of the store at ``folder``; StoreError
    if it is missing, unreadable, of another format or version, or holds a
    field of the wrong type."""
    header_path = folder / HEADER_FILE
    if not header_path.exists():
        if folder.is_dir() and (folder / "journal.jsonl").exists():
            raise StoreError(
                f"{folder}: not a complete token store yet: its first `midilm prepare` was interrupted; run it again to finish"
            )
        raise StoreError(f"{folder}: no token store here (missing {HEADER_FILE}); create one with `midilm prepare`")
    data = _read_file(header_path, "store header", limit=HEADER_MAX_BYTES)
    try:
        header = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"{header_path}: unreadable store header: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise StoreError(f"{header_path}: not a midilm token store header")
    if header.get("format_version") != FORMAT_VERSION:
        raise StoreError(
            f"{folder}: store format version {shown(header.get('format_version'))} is not the version {FORMAT_VERSION} this midilm reads; "
            "prepare the store again"
        )
    where = str(header_path)
    check_object(header, HEADER_FIELDS, where=where, error=StoreError, required=REQUIRED_HEADER_KEYS)
    check_object(header["files"], dict.fromkeys(FILE_KEYS, FILE_NAME), where=where, error=StoreError, required=FILE_KEYS, prefix="files.")
    check_object(header.get("checksums", {}), dict.fromkeys(CHECKSUM_KEYS, SHA256), where=where, error=StoreError, prefix="checksums.")
    if "settings" in header:
        check_object(
            header["settings"], SETTINGS_FIELDS, where=where, error=StoreError, required=tuple(SETTINGS_FIELDS), prefix="settings."
        )
    by_status = check_object(
        header["counts"], {"by_status": OBJECT}, where=where, error=StoreError, required=("by_status",), prefix="counts."
    )
    check_object(by_status["by_status"], {"ok": COUNT}, where=where, error=StoreError, required=("ok",), prefix="counts.by_status.")
    return header


def read_index(folder: Path, header: dict[str, Any]) -> np.ndarray:
    """The index ``header`` names: int64 ``[n, 3]`` (read-only), checked against
    its file size, the header's checksum, the committed rows and the count of
    tokenized files, so every (offset, count) lies inside the token file."""
    path = folder / header["files"]["index"]
    data = _read_file(path, "store index")
    _check_checksum(path, data, header, "index")
    index = read_npy(data, str(path), StoreError, dtype=INDEX_DTYPE, columns=len(INDEX_COLUMNS))
    files = header["counts"]["by_status"]["ok"]
    if len(index) != files:
        raise StoreError(f"{path}: the index lists {len(index)} files, {HEADER_FILE} field counts.by_status.ok says {files}")
    check_index_values(path, index, header["rows"])
    return index


def check_index_values(path: Path, index: np.ndarray, rows: int) -> None:
    """Every offset >= 0, count >= 1, offset + count <= ``rows`` (without overflow) and split a known code."""
    offsets, counts, splits = index[:, 0], index[:, 1], index[:, 2]
    problems = (
        (offsets < 0, "offset", "is negative"),
        (counts < 1, "count", "is not positive"),
        (offsets > rows, "offset", f"is past the {rows} committed rows"),
        (counts > rows - np.minimum(offsets, rows), "count", f"runs past the {rows} committed rows"),
        ((splits < 0) | (splits >= len(SPLITS)), "split", f"is not a split code (0..{len(SPLITS) - 1})"),
    )
    for bad, column, reason in problems:
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            value = int(index[row, INDEX_COLUMNS.index(column)])
            raise StoreError(f"{path}: row {row} (of {len(index)}), field {column}: {value} {reason}")


def read_manifest(folder: Path, header: dict[str, Any], index: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Every manifest row of the generation ``header`` names, in path order,
    each checked against the manifest's fields; with ``index``, also checked
    against it (the ``ok`` rows are the index's files, in order)."""
    path = folder / header["files"]["manifest"]
    data = _read_file(path, "store manifest")
    _check_checksum(path, data, header, "manifest")
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        records.append(_manifest_row(f"{path} line {number}", line, header["rows"], records[-1]["path"] if records else None))
    seen = header["counts"].get("files_seen")
    if seen is not None and seen != len(records):
        raise StoreError(f"{path}: {len(records)} lines, {HEADER_FILE} field counts.files_seen says {shown(seen)}")
    if index is not None:
        check_manifest_against_index(path, records, index)
    return records


def _manifest_row(where: str, line: bytes, rows: int, previous_path: str | None) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError
        raise StoreError(f"{where}: unreadable store manifest: {exc}") from exc
    check_object(row, MANIFEST_FIELDS, where=where, error=StoreError, required=tuple(MANIFEST_FIELDS))
    if (row["status"] == "error") != bool(row["error"]):
        raise StoreError(
            f"{where}: fields status {row['status']!r} and error {shown(row['error'])} disagree (only an error row has an error)"
        )
    if row["status"] != "error" or row.get("count") is not None:
        check_object(row, STORED_FIELDS, where=where, error=StoreError, required=tuple(STORED_FIELDS))
        if row["count"] > rows - min(row["offset"], rows):
            raise StoreError(f"{where}: fields offset {row['offset']}, count {row['count']}: run past the {rows} committed rows")
    if previous_path is not None and row["path"] <= previous_path:
        raise StoreError(
            f"{where}: field path: {shown(row['path'])} is not after the previous line's (the manifest is sorted, each path once)"
        )
    return row


def check_result(entry: Any, where: str) -> dict[str, Any]:
    """A journal entry (one file's result): every result field of its type, and
    the stored rows' fields unless the file failed (``error``)."""
    check_object(entry, {"path": TEXT, **RESULT_FIELDS}, where=where, error=StoreError, required=("path", *RESULT_FIELDS))
    if entry["error"] is None:
        check_object(entry, STORED_FIELDS, where=where, error=StoreError, required=tuple(STORED_FIELDS))
    return entry


def check_manifest_against_index(path: Path, records: list[dict[str, Any]], index: np.ndarray) -> None:
    """The ``ok`` rows, in order, are the index's files: index i, same offset, count and split."""
    ok = [row for row in records if row["status"] == "ok"]
    if len(ok) != len(index):
        raise StoreError(f"{path}: {len(ok)} files with status ok, the index lists {len(index)}")
    for i, row in enumerate(ok):
        expected = (i, *(int(v) for v in index[i]))
        got = (row.get("index"), row["offset"], row["count"], SPLITS.index(row["split"]) if row.get("split") in SPLITS else None)
        if got != expected:
            raise StoreError(
                f"{path}: {row['path']}: fields index, offset, count, split {got} disagree with the index's row {i} {expected[1:]}"
            )


def open_tokens(folder: Path, header: dict[str, Any]) -> np.ndarray:
    """The first ``rows`` event rows of the token file ``header`` names,
    memory-mapped read-only (bytes past them belong to an unfinished run and
    are ignored); StoreError if the file is missing, not a regular file, or
    shorter than the store needs."""
    n_rows = header["rows"]
    path = folder / header["files"]["tokens"]
    if n_rows == 0:
        return np.zeros((0, vocab.EVENT_LEN), dtype=ROW_DTYPE)
    repair = "the store is damaged; run `midilm prepare` on its sources again to repair it"
    try:
        with open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            needed = n_rows * ROW_BYTES
            if size < needed:
                raise StoreError(f"{path}: truncated token file ({size} bytes, the store needs {needed}): {repair}")
            return np.memmap(handle, dtype=ROW_DTYPE, mode="r", shape=(n_rows, vocab.EVENT_LEN))
    except FileNotFoundError:
        raise StoreError(f"{path}: missing token file: {repair}") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the token file: {exc.strerror or exc}") from exc
