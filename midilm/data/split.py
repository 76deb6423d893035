"""Train/val/test assignment: a pure function of the music, or a published split file.

A file's split is drawn from the hash of its token stream, so it depends on
nothing else: adding files never moves another, every machine agrees, and
copies of the same music (byte-identical or not) always share a split. A
split file (``path -> split``, e.g. a published benchmark split) overrides
the hash for the files it names.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from midilm.data.store_files import SPLITS
from midilm.errors import ConfigError

SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}
PATH_COLUMNS: tuple[str, ...] = ("path", "file", "filename", "midi_filename", "midi", "name")
"""Header names recognised as the path column of a CSV split file (MAESTRO uses ``midi_filename``)."""


def check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    if len(ratios) != len(SPLITS) or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ConfigError(
            f"--split-ratios {','.join(f'{r:g}' for r in ratios)}: expected three non-negative numbers (train,val,test) with a positive sum"
        )
    total = float(sum(ratios))
    return tuple(r / total for r in ratios)  # type: ignore[return-value]


def hash_split(content_sha256: str, ratios: Sequence[float]) -> str:
    """The split of a file whose content hash (hex) is given: its first 64 bits,
    read as a fraction of 2**64, fall into one of the cumulative ratio intervals."""
    fraction = int(content_sha256[:16], 16) / 2**64
    edge = 0.0
    for name, ratio in zip(SPLITS, ratios, strict=True):
        edge += ratio
        if fraction < edge:
            return name
    return next(name for name, ratio in zip(reversed(SPLITS), reversed(ratios), strict=True) if ratio > 0)


def _split_name(value: str, where: str) -> str:
    name = SPLIT_ALIASES.get(value.strip().lower())
    if name is None:
        raise ConfigError(f"{where}: unknown split {value.strip()!r}; expected one of {', '.join(sorted(SPLIT_ALIASES))}")
    return name


class SplitFile:
    """Paths -> split read from a CSV with a header (a path column and a
    ``split`` column, e.g. MAESTRO's metadata) or from lines ``path<TAB>split``
    / ``path,split`` / ``path split``. An entry matches a stored file whose
    path ends with it (whole path components), so relative paths work."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            text = self.path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--split-file {self.path}: cannot read: {exc}") from exc
        self.text_sha256 = hashlib.sha256(text.encode()).hexdigest()
        self._by_suffix: dict[tuple[str, ...], str] = {}
        for entry, split in self._entries(text):
            self._by_suffix[_components(entry)] = split
        if not self._by_suffix:
            raise ConfigError(f"--split-file {self.path}: no entries found")
        self._lengths = sorted({len(k) for k in self._by_suffix}, reverse=True)

    def _entries(self, text: str) -> list[tuple[str, str]]:
        lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if not lines:
            return []
        rows = list(csv.reader(lines))
        header = [cell.strip().lower() for cell in rows[0]]
        if "split" in header and len(rows[0]) > 1:
            path_column = next((header.index(c) for c in PATH_COLUMNS if c in header), None)
            if path_column is None:
                raise ConfigError(f"--split-file {self.path}: CSV header has no path column (one of {', '.join(PATH_COLUMNS)})")
            split_column = header.index("split")
            return [
                (row[path_column], _split_name(row[split_column], f"{self.path}:{n + 2}"))
                for n, row in enumerate(rows[1:])
                if len(row) > max(path_column, split_column)
            ]
        entries = []
        for n, line in enumerate(lines, 1):
            for separator in ("\t", ",", None):
                parts = line.rsplit(separator, 1) if separator else line.rsplit(None, 1)
                if len(parts) == 2:
                    break
            else:
                raise ConfigError(f"--split-file {self.path}:{n}: expected 'path<TAB>split', got {line!r}")
            entries.append((parts[0].strip(), _split_name(parts[1], f"{self.path}:{n}")))
        return entries

    def split_of(self, path: str) -> str | None:
        """The split the file names for ``path`` (longest matching suffix), or None."""
        parts = _components(path)
        for length in self._lengths:
            found = self._by_suffix.get(parts[-length:]) if length <= len(parts) else None
            if found is not None:
                return found
        return None


def _components(path: str) -> tuple[str, ...]:
    return tuple(part for part in PurePosixPath(path.replace("\\", "/")).parts if part not in ("/", "."))
