"""Write a token store so that killing the writer at any moment loses nothing.

A writer holds the store's lock for a whole run. Event rows are appended to
the token file and each finished file's result is then appended as one line
to ``journal.jsonl``; a commit writes the next generation's index and
manifest (with their SHA-256 in the header) and finally replaces
``store.json`` atomically. Readers see only committed generations. A run
that is killed leaves the last committed generation intact, and the next run
resumes from the journal: lines that are incomplete, or whose rows did not
reach the disk, are dropped, and bytes past the last journaled row are cut
off before appending. Committed or journaled rows that are missing or
differ from their checksum (a token file cut or zero-filled since) are
dropped the same way and their files tokenized again. See
``docs/store-format.md``.
"""

from __future__ import annotations

import errno
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from midilm import vocab
from midilm.data.integrity import damaged_streams, physical_rows
from midilm.data.store_files import (
    FILE_NAME,
    FORMAT,
    FORMAT_VERSION,
    HEADER_FILE,
    INDEX_COLUMNS,
    INDEX_DTYPE,
    ROW_BYTES,
    ROW_DTYPE,
    check_result,
    read_header,
    read_index,
    read_manifest,
    sha256_of,
)
from midilm.errors import StoreError

JOURNAL_FILE = "journal.jsonl"
LOCK_FILE = "lock"
JOURNAL_VERSION = 1
COMPACT_BELOW = 0.5
"""Rewrite the token file at commit when less than this share of its rows is still referenced."""


def _fsync_directory(path: Path) -> None:
    if hasattr(os, "O_DIRECTORY"):
        descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a reader sees the old or the new bytes, never a mix."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_directory(path.parent)


def storage_error(path: Path, exc: OSError) -> StoreError:
    """A StoreError that says plainly when the disk is full."""
    if exc.errno == errno.ENOSPC:
        return StoreError(f"{path}: no space left on the device")
    return StoreError(f"{path}: {exc.strerror or exc}")


class _Lock:
    """An exclusive advisory lock on the store folder (released by the OS if the holder dies)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_FILE
        self.handle = open(self.path, "a+")
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; one writer at a time is the user's job
            return
        try:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "another process"
            self.handle.close()
            raise StoreError(f"{folder}: being written by {holder}; wait for it to finish") from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"midilm prepare (pid {os.getpid()})")
        self.handle.flush()

    def release(self) -> None:
        self.handle.close()


class StoreWriter:
    """The one writer of a store folder during a prepare or merge run.

    ``committed``: manifest rows of the last generation when it was built
    with the same tokenizer spec (else empty: the run rebuilds);
    ``journaled``: results finished by an interrupted run with this spec.
    Rows of either whose tokens are missing from the token file or differ
    from their checksum are left out of both (their files are tokenized
    again); ``repaired`` lists those committed paths and ``damage`` says
    what was found. The token file is only ever cut, never extended.
    """

    def __init__(self, folder: str | os.PathLike, tokenizer_spec: dict[str, Any]) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(self.folder, exc) from exc
        self._lock = _Lock(self.folder)
        self.spec = tokenizer_spec
        self.header: dict[str, Any] | None = None
        self.compatible = False
        self.committed: dict[str, dict[str, Any]] = {}
        self.rebuild_reason = ""
        self.repaired: list[str] = []
        self.damage = ""
        self._read_committed()
        self.generation = (self.header["generation"] if self.header else 0) + 1
        self.tokens_name = self.header["files"]["tokens"] if self.compatible else f"tokens-{self.generation}.u16"
        self.journaled: dict[str, dict[str, Any]] = {}
        self._resume_journal()

    # ----- opening -------------------------------------------------------------------------------

    def _read_committed(self) -> None:
        if not (self.folder / HEADER_FILE).exists():
            return
        try:
            header = read_header(self.folder)
        except StoreError as exc:
            self.rebuild_reason = f"the existing store is unreadable ({exc})"
            return
        self.header = header
        if header["tokenizer"] != self.spec:
            self.rebuild_reason = "the tokenizer options or version changed"
            return
        try:
            rows = read_manifest(self.folder, header, read_index(self.folder, header))
        except StoreError as exc:
            self.rebuild_reason = f"the existing store is unreadable ({exc})"
            return
        self.compatible = True
        self.committed = {row["path"]: row for row in rows}

    @property
    def tokens_path(self) -> Path:
        return self.folder / self.tokens_name

    def _committed_rows(self) -> int:
        if self.header and self.header["files"]["tokens"] == self.tokens_name:
            return int(self.header["rows"])
        return 0

    def _resume_journal(self) -> None:
        journal_path = self.folder / JOURNAL_FILE
        entries: list[dict[str, Any]] = []
        if journal_path.exists():
            entries = self._valid_journal_entries(journal_path)
        end_rows = self._keep_intact_rows(entries)
        try:
            with open(self.tokens_path, "ab") as handle:
                handle.truncate(end_rows * ROW_BYTES)  # cuts rows no entry holds; never extends
            head = {"journal": JOURNAL_VERSION, "tokenizer": self.spec, "tokens": self.tokens_name}
            write_atomically(journal_path, "".join(json.dumps(line) + "\n" for line in [head, *entries]).encode())
            self._tokens = open(self.tokens_path, "ab")
            self._journal = open(journal_path, "a", encoding="utf-8")
        except OSError as exc:
            raise storage_error(self.folder, exc) from exc
        self.journaled = {e["path"]: e for e in entries}
        self._end_rows = end_rows
        # committed rows are in this token file: ``committed`` is empty unless the store is compatible
        self._segments = {r["tokens_sha256"]: (r["offset"], r["count"]) for r in [*self.committed.values(), *entries] if r.get("count")}

    def _keep_intact_rows(self, entries: list[dict[str, Any]]) -> int:
        """Drop the committed rows and journal ``entries`` (in place) whose token
        rows are missing or differ from their checksum; return the row count
        the token file keeps: the committed and journaled rows when all are
        there, else the end of the last intact stream."""
        tokens = physical_rows(self.tokens_path)
        on_disk = len(tokens)
        damaged = damaged_streams(tokens, [*self.committed.values(), *entries])
        del tokens
        if damaged:
            self.repaired = sorted(path for path, row in self.committed.items() if row.get("tokens_sha256") in damaged)
            self.committed = {path: row for path, row in self.committed.items() if row.get("tokens_sha256") not in damaged}
            entries[:] = [entry for entry in entries if entry.get("tokens_sha256") not in damaged]
        needed = max([self._committed_rows()] + [e["offset"] + e["count"] for e in entries if e.get("count")])
        if self.compatible and (damaged or on_disk < needed):
            found = [f"{self.tokens_name} holds {on_disk} of the {needed} rows written"] if on_disk < needed else []
            if self.repaired:
                found.append(f"the token rows of {len(self.repaired)} stored file(s) were missing or differed from their checksums")
            self.damage = "; ".join(found)
        if needed <= on_disk:
            return needed  # damaged rows inside the file stay, unreferenced, until a compaction
        return max([0] + [r["offset"] + r["count"] for r in [*self.committed.values(), *entries] if r.get("count")])

    def _valid_journal_entries(self, journal_path: Path) -> list[dict[str, Any]]:
        """Entries of an interrupted run with this spec and token file (their rows are checked later)."""
        lines = journal_path.read_bytes().split(b"\n")
        try:
            head = json.loads(lines[0])
        except (json.JSONDecodeError, IndexError):
            return []
        if not isinstance(head, dict) or head.get("tokenizer") != self.spec or head.get("journal") != JOURNAL_VERSION:
            return []
        if not FILE_NAME.passes(head.get("tokens")):
            return []  # a token file outside the store folder is never written to
        if head.get("tokens") != self.tokens_name:
            if self.compatible or not (self.folder / head.get("tokens", "")).is_file():
                return []
            self.tokens_name = head["tokens"]  # resume the interrupted rebuild's token file
        entries = []
        for line in lines[1:-1]:  # the last piece has no newline: written or not, it is incomplete
            try:
                entry = check_result(json.loads(line), f"{JOURNAL_FILE} line {len(entries) + 2}")
            except (json.JSONDecodeError, StoreError):
                break
            entries.append(entry)
        return entries

    # ----- a run ---------------------------------------------------------------------------------

    def has_stream(self, tokens_sha256: str) -> bool:
        """Whether rows with this hash are already in the token file."""
        return tokens_sha256 in self._segments

    def append(self, result: dict[str, Any], tokens: np.ndarray | None) -> dict[str, Any]:
        """Journal one file's result, storing its rows unless a stream with the
        same ``tokens_sha256`` is stored already (then it shares those rows);
        returns the result with ``offset`` and ``count`` set when it has rows."""
        entry = dict(result)
        try:
            known = self._segments.get(entry.get("tokens_sha256"))
            if known is not None:
                entry["offset"], entry["count"] = known
            elif tokens is not None and len(tokens):
                entry["offset"], entry["count"] = self._end_rows, len(tokens)
                self._tokens.write(np.ascontiguousarray(tokens, dtype=ROW_DTYPE).tobytes())
                self._tokens.flush()
                self._end_rows += len(tokens)
                self._segments[entry["tokens_sha256"]] = (entry["offset"], entry["count"])
            self._journal.write(json.dumps(entry) + "\n")
            self._journal.flush()
        except OSError as exc:
            raise storage_error(self.folder, exc) from exc
        self.journaled[entry["path"]] = entry
        return entry

    def commit(self, records: list[dict[str, Any]], index: np.ndarray, extra_header: dict[str, Any]) -> dict[str, Any]:
        """Make ``records`` (the full manifest, in path order) and ``index`` the
        store's next generation; returns the new header."""
        records, index = self._compacted(records, index)
        generation = self.generation
        files = {"tokens": self.tokens_name, "index": f"index-{generation}.npy", "manifest": f"manifest-{generation}.jsonl"}
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "generation": generation,
            "tokenizer": self.spec,
            "vocab": {"name": vocab.spec()["name"], "vocab_size": vocab.VOCAB_SIZE},
            "index_columns": list(INDEX_COLUMNS),
            "files": files,
            "rows": self._end_rows,
            **extra_header,
        }
        index_file = io.BytesIO()
        np.save(index_file, np.ascontiguousarray(index, dtype=INDEX_DTYPE))
        contents = {"index": index_file.getvalue(), "manifest": "".join(json.dumps(row) + "\n" for row in records).encode()}
        header["checksums"] = {key: sha256_of(data) for key, data in contents.items()}
        try:
            self._tokens.flush()
            os.fsync(self._tokens.fileno())
            for key, data in contents.items():
                with open(self.folder / files[key], "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
            write_atomically(self.folder / HEADER_FILE, json.dumps(header, indent=1).encode())
        except OSError as exc:
            raise storage_error(self.folder, exc) from exc
        self.header = header
        self._remove_stale(keep=set(files.values()))
        return header

    def _compacted(self, records: list[dict[str, Any]], index: np.ndarray) -> tuple[list[dict[str, Any]], np.ndarray]:
        """Copy the referenced rows into a fresh token file when most rows of
        the current one belong to files that changed or left."""
        segments = sorted({(r["offset"], r["count"]) for r in records if r.get("count")})
        referenced = sum(count for _, count in segments)
        new_name = f"tokens-{self.generation}.u16"
        if new_name == self.tokens_name or referenced >= COMPACT_BELOW * self._end_rows:
            return records, index  # a token file started by this run holds little waste
        moved: dict[int, int] = {}
        source = np.memmap(self.tokens_path, dtype=ROW_DTYPE, mode="r", shape=(self._end_rows, vocab.EVENT_LEN))
        try:
            with open(self.folder / new_name, "wb") as handle:
                position = 0
                for offset, count in segments:
                    handle.write(np.ascontiguousarray(source[offset : offset + count]).tobytes())
                    moved[offset] = position
                    position += count
        except OSError as exc:
            raise storage_error(self.folder, exc) from exc
        del source
        self._tokens.close()
        self.tokens_name = new_name
        self._tokens = open(self.tokens_path, "ab")
        self._end_rows = position
        records = [{**r, "offset": moved[r["offset"]]} if r.get("count") else r for r in records]
        index = index.copy()
        index[:, 0] = [moved[int(o)] for o in index[:, 0]]
        return records, index

    def _remove_stale(self, keep: set[str]) -> None:
        """Delete the journal and every file of older generations."""
        self._journal.close()
        (self.folder / JOURNAL_FILE).unlink(missing_ok=True)
        for path in self.folder.iterdir():
            stale = path.name.startswith(("tokens-", "index-", "manifest-")) and path.name not in keep
            if stale or path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)

    def close(self) -> None:
        """Release the store; a journal holding no result (a run that found
        nothing to do) is removed, one holding results is kept for the next run."""
        for handle in (getattr(self, "_tokens", None), getattr(self, "_journal", None)):
            if handle is not None and not handle.closed:
                handle.close()
        if hasattr(self, "_journal") and not self.journaled:
            (self.folder / JOURNAL_FILE).unlink(missing_ok=True)
        self._lock.release()

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
