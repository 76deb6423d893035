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

import os
from pathlib import Path
from typing import Any

import numpy as np

from midilm.data.integrity import damaged_streams
from midilm.data.manifest import counts, identity
from midilm.data.store_files import HEADER_FILE, SPLITS, open_tokens, read_header, read_index, read_manifest
from midilm.errors import StoreError


class TokenStore:
    """A prepared corpus: ``len(store)`` tokenized files, their tokens, splits and manifest.

    ``store.tokens(i)`` is a read-only memory-mapped ``[n, 8]`` uint16 view;
    nothing but the index (24 bytes per file) is read into memory when the
    store opens. ``store.records`` loads the manifest on first use. A store
    pickles as its path, so DataLoader workers reopen it instead of copying it.

    Opening checks every file against the header: types of the header's
    fields, the index's shape, size, checksum and bounds (every file's rows
    inside the committed rows), and the token file's size. :meth:`verify`
    also hashes every file's token rows, which reads the whole token file.
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
        self._index = read_index(self.path, header)
        self._rows = open_tokens(self.path, header)
        self.header = header
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
            self._records = read_manifest(self.path, self.header, self._index)
        return self._records

    def verify(self) -> None:
        """Check the whole store: the manifest (fields, checksum, agreement with
        the index and with the header's identity and counts) and every stored
        file's token rows against its ``tokens_sha256``. StoreError naming the
        damaged files. Reads the whole token file: half a second for 9,000
        files and 24 MB of tokens, about 2 s more per GB (BENCHMARKS.md)."""
        expected = {"identity": identity(self.tokenizer_spec, self.records), "counts": counts(self.records)}
        for field, value in expected.items():
            if self.header[field] != value:
                raise StoreError(f"{self.path / HEADER_FILE}: field {field} disagrees with the manifest {self.header['files']['manifest']}")
        damaged = damaged_streams(self._rows, self.records)
        if damaged:
            paths = [r["path"] for r in self.records if r.get("tokens_sha256") in damaged]
            shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
            raise StoreError(
                f"{self.path}: the token rows of {len(paths)} file(s) ({shown}) differ from their checksums: the token file "
                f"{self.header['files']['tokens']} was damaged; run `midilm prepare` on the store's sources again to re-tokenize them"
            )

    def tokens(self, i: int) -> np.ndarray:
        """The ``[n, 8]`` uint16 event rows of tokenized file ``i`` (a read-only view)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self.path}: file index {i} out of range for {len(self)} tokenized files")
        offset, count, _ = (int(v) for v in self._index[i])
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
