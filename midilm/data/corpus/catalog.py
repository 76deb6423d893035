"""Which pieces of the installed music21 corpus each named corpus holds, and their licences.

The music21 wheel carries a corpus of encoded scores (MusicXML, Humdrum,
ABC). midilm converts it to MIDI on the user's machine instead of shipping
MIDI, because some encodings forbid derivative formats. This module only
lists files and decides; conversion lives in :mod:`midilm.data.corpus.convert`.

A corpus is a list of *units*, the independent jobs of a conversion run: one
score file, one slice of the tunes of a multi-tune ABC file, or an ABC file
whose tunes are the voices of a single piece. The licence of every unit comes
from ``music21/corpus/license.txt``, the collection's own licence file and
the rights statements inside the files (read once to write the tables below;
``docs/corpus.md`` quotes them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from midilm.errors import ConfigError

MUSIC21_TERMS = "music21-corpus"
"""Licence id of pieces covered only by music21's corpus terms: distributed
with music21 by the encoders' permission; some uses, commercial ones in
particular, may be restricted."""

LICENCES: dict[str, str] = {
    MUSIC21_TERMS: "distributed with music21 by the encoders' permission; commercial use may be restricted (music21/corpus/license.txt)",
    "essen-noncommercial": "Essen folksong database: permission for non-commercial distribution and use within music21; legal status unclear (essenFolksong/license.txt)",
    "GPL-2.0-or-later": "GNU GPL v2 or later (c) 1999 Laura E. Conrad (header of each file)",
    "CC-BY-SA-3.0": "Creative Commons BY-SA 3.0, 2010 Michael Scott Cuthbert (rights field of the file)",
    "CC-BY-SA": "original out of copyright (1915); engraving CC-BY-SA 2017 Michael Scott Cuthbert (rights field of the file)",
    "CC-BY": "Creative Commons BY, 2014 (rights field of the file)",
    "public-domain": "public domain (rights field of the file)",
    "palestrina-restricted": "(c) 2000 John Miller; rights to all derivative electronic formats reserved: local use only, never ship the MIDI or a model trained on it",
}
"""Licence id -> what it means and where it was read."""

COLLECTION_LICENCE: dict[str, str] = {
    "essenFolksong": "essen-noncommercial",
    "josquin": "GPL-2.0-or-later",
    "ciconia": "CC-BY-SA-3.0",
    "luca": "CC-BY-SA-3.0",
    "beach": "CC-BY-SA",
    "weber": "public-domain",
    "palestrina": "palestrina-restricted",
}
"""Collections whose every file carries one licence other than music21's terms."""

FILE_LICENCE: dict[str, str] = {
    "corelli/opus3no1/1grave.xml": "CC-BY",
    "leadSheet/fosterBrownHair.mxl": "public-domain",
}

EXCLUDED_COLLECTIONS: dict[str, str] = {
    "demos": "music21's own test material",
    "theoryExercises": "music21's own test material",
}
EXCLUDED_FILES: dict[str, str] = {
    "leadSheet/berlinAlexandersRagtime.mxl": "All Rights Reserved",
    "bach/bwv277.krn": "CCARH 1994, derivative formats reserved; the .mxl of the same chorale is used",
    "bach/bwv281.krn": "CCARH 1994, derivative formats reserved; the .mxl of the same chorale is used",
    "bach/bwv366.krn": "CCARH 1994, derivative formats reserved; the .mxl of the same chorale is used",
}
EXCLUDED_SUFFIXES: dict[str, str] = {
    ".rntxt": "a Roman-numeral analysis, not the music itself",
}
ENCODING_PREFERENCE: tuple[str, ...] = (".mxl", ".xml", ".musicxml", ".krn", ".abc")
"""When one piece is encoded twice (a Beethoven movement as .krn and .mxl), the first
suffix here is converted and the other left out, so the piece is not in the corpus twice."""
RESTRICTED_COLLECTIONS: frozenset[str] = frozenset({"palestrina"})
"""Collections only a corpus that names them explicitly may include."""

MERGED_TUNE_COLLECTIONS: frozenset[str] = frozenset({"josquin"})
"""ABC collections whose files hold one tune per voice of a single piece."""

TUNES_PER_UNIT = 25
"""Tunes of a multi-tune ABC file converted by one job: small enough to
spread the big Essen files over all cores, large enough to amortise a job."""


@dataclass(frozen=True)
class CorpusDefinition:
    name: str
    description: str
    collections: tuple[str, ...] | None
    """Top-level music21 corpus folders; None: every collection that is not restricted."""


CORPORA: dict[str, CorpusDefinition] = {
    d.name: d
    for d in (
        CorpusDefinition(
            "music21-bach-essen",
            "Bach chorales (4-voice polyphony) and the Essen folksong collection (melodies, non-commercial licence); "
            "the default: about 8,900 pieces, a few minutes to convert and prepare on 2 cores",
            ("bach", "essenFolksong"),
        ),
        CorpusDefinition(
            "music21-bach",
            "Bach chorales only (about 400 pieces): polyphonic, music21's terms only, converts in about a minute",
            ("bach",),
        ),
        CorpusDefinition(
            "music21-all",
            "every collection music21 allows (quartets, madrigals, trecento, folk books, piano pieces) except Palestrina; "
            "about 13,600 pieces, 30 CPU-minutes to convert once",
            None,
        ),
        CorpusDefinition(
            "music21-palestrina",
            "Palestrina's masses (1,318 pieces): derivative formats reserved by the encoder, for local experiments only; "
            "never ship its MIDI or a model trained on it",
            ("palestrina",),
        ),
    )
}
DEFAULT_CORPUS = "music21-bach-essen"


@dataclass(frozen=True)
class CorpusUnit:
    """One conversion job: a score file, or some tunes of an ABC file."""

    source: str
    """Path of the score file inside music21's corpus folder (POSIX form)."""
    licence: str
    tunes: tuple[int, ...] = ()
    """ABC reference numbers (``X:``) converted one by one; empty: the file is one piece."""
    merge_tunes: bool = False
    """The file's tunes are the voices of one piece, written as one MIDI file."""
    cost: float = 1.0
    """Relative conversion cost (bytes of score text), to start long jobs first."""

    @property
    def id(self) -> str:
        """A file-name-safe identifier, stable across machines."""
        stem = self.source.replace("/", "__")
        if self.tunes:
            return f"{stem}__{self.tunes[0]}-{self.tunes[-1]}"
        return stem

    def outputs(self) -> list[tuple[str, str]]:
        """``(MIDI path relative to the output folder, origin)`` of each piece."""
        without_suffix = str(PurePosixPath(self.source).with_suffix(""))
        if self.tunes:
            return [(f"{without_suffix}/{n:04d}.mid", f"music21:{self.source}#{n}") for n in self.tunes]
        return [(f"{without_suffix}.mid", f"music21:{self.source}")]


def corpus_root() -> Path:
    """The folder of the music21 corpus that the installed music21 carries."""
    from music21 import common

    return Path(common.getCorpusFilePath())


def music21_version() -> str:
    import music21

    return music21.__version__


def get_definition(name: str) -> CorpusDefinition:
    try:
        return CORPORA[name]
    except KeyError:
        raise ConfigError(f"--corpus {name!r}: unknown corpus; choose one of {', '.join(CORPORA)}") from None


def exclusion_reason(relative: str) -> str | None:
    """Why a corpus file is never converted, or None when it may be."""
    path = PurePosixPath(relative)
    if path.parts[0] in EXCLUDED_COLLECTIONS:
        return EXCLUDED_COLLECTIONS[path.parts[0]]
    if relative in EXCLUDED_FILES:
        return EXCLUDED_FILES[relative]
    return EXCLUDED_SUFFIXES.get(path.suffix.lower())


def licence_of(relative: str) -> str:
    if relative in FILE_LICENCE:
        return FILE_LICENCE[relative]
    return COLLECTION_LICENCE.get(PurePosixPath(relative).parts[0], MUSIC21_TERMS)


_TUNE_NUMBER = re.compile(r"^X:\s*(\d+)", re.MULTILINE)


def abc_tune_numbers(path: Path) -> list[int]:
    """Reference numbers of the tunes of an ABC file, in file order."""
    return [int(n) for n in _TUNE_NUMBER.findall(path.read_text(encoding="latin-1"))]


def units_of_file(root: Path, relative: str) -> list[CorpusUnit]:
    """The conversion jobs of one corpus file."""
    path = root / relative
    licence = licence_of(relative)
    size = float(path.stat().st_size)
    if path.suffix.lower() != ".abc":
        return [CorpusUnit(relative, licence, cost=size)]
    if PurePosixPath(relative).parts[0] in MERGED_TUNE_COLLECTIONS:
        return [CorpusUnit(relative, licence, merge_tunes=True, cost=size)]
    numbers = abc_tune_numbers(path)
    if len(numbers) <= 1:
        return [CorpusUnit(relative, licence, cost=size)]
    per_tune = size / len(numbers)
    return [
        CorpusUnit(relative, licence, tunes=tuple(numbers[i : i + TUNES_PER_UNIT]), cost=per_tune * len(numbers[i : i + TUNES_PER_UNIT]))
        for i in range(0, len(numbers), TUNES_PER_UNIT)
    ]


def _encoding_rank(relative: str) -> int:
    suffix = PurePosixPath(relative).suffix.lower()
    return ENCODING_PREFERENCE.index(suffix) if suffix in ENCODING_PREFERENCE else len(ENCODING_PREFERENCE)


def _one_encoding_per_piece(relatives: Iterable[str]) -> list[str]:
    """The corpus files, sorted, keeping one encoding of each piece (by ENCODING_PREFERENCE)."""
    chosen: dict[str, str] = {}
    for relative in sorted(relatives):
        stem = str(PurePosixPath(relative).with_suffix(""))
        if stem not in chosen or _encoding_rank(relative) < _encoding_rank(chosen[stem]):
            chosen[stem] = relative
    return sorted(chosen.values())


def corpus_units(name: str, root: Path | None = None) -> list[CorpusUnit]:
    """Every conversion job of the named corpus, in a deterministic order."""
    definition = get_definition(name)
    root = corpus_root() if root is None else root
    if not root.is_dir():
        raise ConfigError(f"music21 corpus folder {root} is missing: this music21 was installed without its corpus")
    from music21 import corpus

    relatives = _one_encoding_per_piece(p.relative_to(root).as_posix() for p in corpus.getCorePaths())
    units: list[CorpusUnit] = []
    for relative in relatives:
        collection = PurePosixPath(relative).parts[0]
        if definition.collections is None:
            if collection in RESTRICTED_COLLECTIONS:
                continue
        elif collection not in definition.collections:
            continue
        if exclusion_reason(relative) is None:
            units.extend(units_of_file(root, relative))
    if not units:
        raise ConfigError(f"corpus {name!r}: no pieces found under {root}")
    return units
