"""Turn SOURCE arguments (folders, MIDI files, text lists of paths) into a sorted file list.

Every file gets two names: ``path``, absolute, which identifies it in the
store, and ``key``, its path relative to the SOURCE it was found under, which
does not depend on where the corpus is mounted: ``--limit`` samples and
``--shard`` deals files by hashing the key, so every machine agrees.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from midilm.errors import ConfigError
from midilm.files import describe, open_regular

MIDI_SUFFIXES: frozenset[str] = frozenset({".mid", ".midi"})
"""File name endings taken as MIDI in folders (compared in lower case)."""
LIST_SNIFF_BYTES = 64 << 10
"""A SOURCE list whose first bytes hold a NUL is not text and is refused before it is read whole."""


@dataclass(frozen=True)
class SourceFile:
    path: str
    """Absolute POSIX path: the file's identity in the store."""
    key: str
    """Path relative to its SOURCE: the machine-independent sampling and sharding key."""
    licence: str | None = None
    origin: str | None = None
    """Where the file came from when midilm made it (a music21 corpus piece)."""


def is_midi_name(name: str) -> bool:
    return Path(name).suffix.lower() in MIDI_SUFFIXES


def _absolute(path: Path) -> str:
    return Path(os.path.abspath(path)).as_posix()


def _walk(folder: Path) -> list[SourceFile]:
    found = []
    for directory, subdirectories, names in os.walk(folder):
        subdirectories.sort()
        for name in sorted(names):
            if is_midi_name(name):
                full = Path(directory) / name
                found.append(SourceFile(_absolute(full), full.relative_to(folder).as_posix()))
    return found


def _read_list(list_path: Path) -> list[SourceFile]:
    not_a_list = f"{list_path}: neither a .mid/.midi file nor a text file listing paths"
    try:
        with open_regular(list_path) as handle:
            start = handle.read(LIST_SNIFF_BYTES)
            if b"\0" in start:  # a binary file (audio, an archive): refused before it is read whole
                raise ConfigError(not_a_list)
            text = (start + handle.read()).decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(not_a_list) from None
    except OSError as exc:
        raise ConfigError(f"{list_path}: cannot read: {exc.strerror}") from exc
    files = []
    for line in text.splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        listed = Path(entry).expanduser()
        full = listed if listed.is_absolute() else list_path.parent / listed
        if full.is_dir():
            files.extend(_walk(full))
        else:
            # a missing listed file is kept: prepare records it as an error
            files.append(SourceFile(_absolute(full), Path(entry).as_posix()))
    return files


def discover(sources: Sequence[str | os.PathLike | SourceFile]) -> list[SourceFile]:
    """Every file the sources name, sorted by path, each path once.

    Folders are searched recursively for .mid/.midi (any letter case); a file
    ending in .mid/.midi is taken as is; any other file is read as a UTF-8
    list of paths, one per line (``#`` comments, paths relative to the list's
    folder; listed folders are searched too). A SOURCE that does not exist,
    or a list that is not a regular file, is a :class:`ConfigError`. Files
    are listed whatever they are: ``prepare`` reads only regular files and
    records the others (a FIFO named ``x.mid``) as skipped, with the reason.
    """
    found: dict[str, SourceFile] = {}
    for source in sources:
        if isinstance(source, SourceFile):
            files = [source]
        else:
            path = Path(source).expanduser()
            if path.is_dir():
                files = _walk(path)
            elif is_midi_name(path.name) and path.exists():
                files = [SourceFile(_absolute(path), path.name)]
            elif path.is_file():
                files = _read_list(path)
            elif path.exists():
                raise ConfigError(
                    f"SOURCE {source}: {describe(path)}, not a folder, a MIDI file or a list file; only regular files are read"
                )
            else:
                raise ConfigError(f"SOURCE {source}: no such file or folder")
        for file in files:
            found.setdefault(file.path, file)
    return [found[p] for p in sorted(found)]


def _rank(key: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{key}".encode()).digest()[:8], "big")


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise ConfigError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    if not 0 <= index < count:
        raise ConfigError(f"--shard {text}: expected 0 <= i < n")
    return index, count


def select(files: Iterable[SourceFile], *, limit: int | None = None, shard: str | None = None) -> list[SourceFile]:
    """A deterministic sample of ``limit`` files (those whose key hashes lowest),
    then the share ``shard`` = "i/n" of it; the result stays in path order.

    The sample is taken before sharding, so the shards of ``--limit N`` together
    hold exactly the files of ``--limit N``.
    """
    chosen = list(files)
    if limit is not None:
        if limit < 1:
            raise ConfigError(f"--limit {limit}: expected a positive number of files")
        keep = {f.path for f in sorted(chosen, key=lambda f: (_rank(f.key, "limit"), f.path))[:limit]}
        chosen = [f for f in chosen if f.path in keep]
    if shard is not None:
        index, count = parse_shard(shard)
        chosen = [f for f in chosen if _rank(f.key, "shard") % count == index]
    return chosen
