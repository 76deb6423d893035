"""Read a token store: the prepared corpus that training memory-maps.

The on-disk format (version 1) is specified in ``docs/store-format.md``. In
short, a store is a folder whose ``store.json`` names the files of the current
generation: the event rows of every tokenized file in one uint16 array
(``tokens-G.u16``), an index of (offset, count, split) per tokenized file
(``index-G.npy``) and a manifest row per source file seen
(``manifest-G.jsonl``). Writers replace ``store.json`` atomically, so a reader
always sees one complete generation, whatever happened to the writer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from midilm import vocab
from midilm.errors import StoreError

FORMAT = "midilm-token-store"
FORMAT_VERSION = 1
HEADER_FILE = "store.json"
SPLITS: tuple[str, ...] = ("train", "val", "test")
"""Split names; a split's code in the index is its position here."""
ROW_DTYPE = np.dtype("<u2")
INDEX_COLUMNS: tuple[str, ...] = ("offset", "count", "split")
"""Columns of the int64 index: first event row, number of rows, split code."""
REQUIRED_HEADER_KEYS: tuple[str, ...] = ("generation", "tokenizer", "files", "rows", "identity", "counts")
FILE_KEYS: tuple[str, ...] = ("tokens", "index", "manifest")


def read_header(path: Path) -> dict[str, Any]:
    """The parsed ``store.json`` of the store at ``path``; StoreError if it is
    missing, unreadable, or of another format or version."""
    header_path = path / HEADER_FILE
    if not header_path.is_file():
        if path.is_dir() and (path / "journal.jsonl").exists():
            raise StoreError(f"{path}: not a complete token store yet: its first `midilm prepare` was interrupted; run it again to finish")
        raise StoreError(f"{path}: no token store here (missing {HEADER_FILE}); create one with `midilm prepare`")
    try:
        header = json.loads(header_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise StoreError(f"{header_path}: unreadable store header: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise StoreError(f"{header_path}: not a midilm token store header")
    if header.get("format_version") != FORMAT_VERSION:
        raise StoreError(
            f"{path}: store format version {header.get('format_version')} is not the version {FORMAT_VERSION} this midilm reads; "
            "prepare the store again"
        )
    missing = [key for key in REQUIRED_HEADER_KEYS if key not in header] + [
        f"files.{key}" for key in FILE_KEYS if key not in header.get("files", {})
    ]
    if missing:
        raise StoreError(f"{header_path}: store header lacks {', '.join(missing)}")
    return header


def read_manifest(path: Path, header: dict[str, Any]) -> list[dict[str, Any]]:
    """Every manifest row of the generation ``header`` names, in path order."""
    manifest_path = path / header["files"]["manifest"]
    try:
        with open(manifest_path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle]
    except (OSError, json.JSONDecodeError) as exc:
        raise StoreError(f"{manifest_path}: unreadable store manifest: {exc}") from exc


def open_rows(path: Path, name: str, n_rows: int) -> np.ndarray:
    """The first ``n_rows`` event rows of a token file, memory-mapped read-only
    (bytes past them belong to an unfinished run and are ignored)."""
    if n_rows == 0:
        return np.zeros((0, vocab.EVENT_LEN), dtype=ROW_DTYPE)
    tokens_path = path / name
    try:
        size = tokens_path.stat().st_size
    except OSError as exc:
        raise StoreError(f"{tokens_path}: missing token file: {exc.strerror}") from exc
    needed = n_rows * vocab.EVENT_LEN * ROW_DTYPE.itemsize
    if size < needed:
        raise StoreError(f"{tokens_path}: truncated token file ({size} bytes, the store needs {needed})")
    return np.memmap(tokens_path, dtype=ROW_DTYPE, mode="r", shape=(n_rows, vocab.EVENT_LEN))


class TokenStore:
    """A prepared corpus: ``len(store)`` tokenized files, their tokens, splits and manifest.

    ``store.tokens(i)`` is a read-only memory-mapped ``[n, 8]`` uint16 view;
    nothing but the index (24 bytes per file) is read into memory when the
    store opens. ``store.records`` loads the manifest on first use. A store
    pickles as its path, so DataLoader workers reopen it instead of copying it.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._open()

    def _open(self) -> None:
        header = read_header(self.path)
        try:
            self._load(header)
        except StoreError:
            # a writer may have committed a new generation, and removed this
            # one's files, between our reading the header and the files
            latest = read_header(self.path)
            if latest.get("generation") == header.get("generation"):
                raise
            self._load(latest)

    def _load(self, header: dict[str, Any]) -> None:
        files = header["files"]
        index_path = self.path / files["index"]
        try:
            index = np.load(index_path)
        except (OSError, ValueError) as exc:
            raise StoreError(f"{index_path}: unreadable store index: {exc}") from exc
        if index.ndim != 2 or index.shape[1] != len(INDEX_COLUMNS) or index.dtype != np.int64:
            raise StoreError(f"{index_path}: store index has shape {index.shape} and dtype {index.dtype}, expected [n, 3] int64")
        n_rows = int(header["rows"])
        if len(index) and int((index[:, 0] + index[:, 1]).max()) > n_rows:
            raise StoreError(f"{index_path}: index points past the {n_rows} committed event rows")
        self.header = header
        self._index = index
        self._rows = open_rows(self.path, files["tokens"], n_rows)
        self._records: list[dict[str, Any]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "generation": self.header["generation"]}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self._open()
        if self.header["generation"] != state["generation"]:
            raise StoreError(
                f"{self.path}: the store was rewritten (generation {self.header['generation']}) while in use (generation {state['generation']})"
            )

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r}: {len(self)} files, {self.n_events} events, identity {self.identity})"

    @property
    def identity(self) -> str:
        """A short hash of the tokens, their order and their splits: training
        records it to notice when the data under a run changed."""
        return self.header["identity"]

    @property
    def tokenizer_spec(self) -> dict[str, Any]:
        """``TokenizerOptions.spec()`` of the options the store was built with."""
        return self.header["tokenizer"]

    @property
    def n_events(self) -> int:
        """Event rows of the tokenized files (each counted once)."""
        return int(self._index[:, 1].sum())

    @property
    def index(self) -> np.ndarray:
        """int64 ``[len(store), 3]``: offset, count, split code of each tokenized file."""
        return self._index

    @property
    def counts(self) -> dict[str, Any]:
        """Files per status and events/tokens per split, as summarised at the last commit."""
        return self.header["counts"]

    @property
    def records(self) -> list[dict[str, Any]]:
        """Manifest rows of every source file seen, in path order; tokenized files
        (``status == "ok"``) carry their ``index`` into this store."""
        if self._records is None:
            self._records = read_manifest(self.path, self.header)
        return self._records

    def tokens(self, i: int) -> np.ndarray:
        """The ``[n, 8]`` uint16 event rows of tokenized file ``i`` (a read-only view)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self.path}: file index {i} out of range for {len(self)} tokenized files")
        offset, count, _ = self._index[i]
        return self._rows[offset : offset + count]

    def lengths(self, indices: np.ndarray | None = None) -> np.ndarray:
        """Event counts of the given tokenized files (all when None)."""
        counts = self._index[:, 1]
        return counts if indices is None else counts[indices]

    def rows(self, offset: int, count: int) -> np.ndarray:
        """``count`` event rows from the absolute row ``offset`` of the token file."""
        return self._rows[offset : offset + count]

    def split(self, name: str) -> np.ndarray:
        """Indices (int64, ascending) of the tokenized files in split ``name``."""
        if name not in SPLITS:
            raise StoreError(f"{self.path}: unknown split {name!r}; splits are {', '.join(SPLITS)}")
        return np.flatnonzero(self._index[:, 2] == SPLITS.index(name)).astype(np.int64)
