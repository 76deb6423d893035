"""Convert a named music21 corpus to MIDI files once, in parallel, into a cache.

Cache layout, under ``<cache root>/music21/<music21 version>-c<CONVERSION_VERSION>/``:
``midi/...`` the converted pieces, ``units/<unit id>.json`` one record per
finished conversion job (written after its MIDI files, atomically), and
``reports/<corpus>.json`` the last conversion report of each corpus. A job
whose record is present and whose files exist is never redone, so corpora
share conversions, an interrupted conversion resumes, and a music21 upgrade
(or a change of the conversion code, which bumps CONVERSION_VERSION) starts
a fresh cache.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from midilm.data.corpus.catalog import DEFAULT_CORPUS, CorpusUnit, corpus_root, corpus_units, music21_version
from midilm.data.corpus.convert import ConversionJob, PieceResult, UnitResult, convert_unit, quiet_worker
from midilm.data.corpus.progress import ConversionProgress, estimated_cpu_seconds
from midilm.data.paths import cache_root
from midilm.data.sources import SourceFile, select
from midilm.data.workers import DEFAULT_CPU_LIMIT_SECONDS, default_workers, parallel_map
from midilm.data.writer import storage_error

CONVERSION_VERSION = 1
"""Bumped whenever the conversion writes different MIDI for the same score."""


@dataclass(frozen=True)
class CorpusBuild:
    """The MIDI files of a corpus, ready to prepare."""

    name: str
    folder: Path
    files: list[SourceFile]
    """Converted pieces in path order, with licence and origin."""
    failures: list[PieceResult]
    converted: int
    """Pieces converted by this call (the others came from the cache)."""
    seconds: float

    @property
    def report_path(self) -> Path:
        return self.folder / "reports" / f"{self.name}.json"


def cache_folder(root: Path | None = None) -> Path:
    """The conversion cache of the installed music21."""
    base = Path(os.path.abspath(cache_root() if root is None else root))
    return base / "music21" / f"{music21_version()}-c{CONVERSION_VERSION}"


def _record_path(folder: Path, unit: CorpusUnit) -> Path:
    return folder / "units" / f"{unit.id}.json"


def _cached(folder: Path, unit: CorpusUnit, cpu_limit_seconds: float | None) -> UnitResult | None:
    """The recorded result of ``unit``, unless its files are gone or a piece
    ran out of time under a smaller limit than ``cpu_limit_seconds``."""
    try:
        record = json.loads(_record_path(folder, unit).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if record.get("unit") != json.loads(json.dumps(asdict(unit))):
        return None
    result = UnitResult(unit, tuple(PieceResult(**p) for p in record["pieces"]), record.get("cpu_limit_seconds"))
    if any(p.ok and not (folder / "midi" / p.midi).is_file() for p in result.pieces):
        return None
    recorded_limit = result.cpu_limit_seconds or 0.0
    if any(p.gave_up for p in result.pieces) and (not cpu_limit_seconds or cpu_limit_seconds > recorded_limit):
        return None
    return result


def _write_json(path: Path, data: object) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(data, indent=1))
        os.replace(temporary, path)
    except OSError as exc:
        raise storage_error(path, exc) from exc


def _save(folder: Path, result: UnitResult) -> None:
    record = {"unit": asdict(result.unit), "cpu_limit_seconds": result.cpu_limit_seconds, "pieces": [asdict(p) for p in result.pieces]}
    _write_json(_record_path(folder, result.unit), record)


def convert_units(
    units: list[CorpusUnit],
    folder: Path,
    *,
    workers: int | None = None,
    cpu_limit_seconds: float | None = DEFAULT_CPU_LIMIT_SECONDS,
    progress: bool = True,
    description: str = "converting",
    root: Path | None = None,
) -> tuple[list[UnitResult], set[str]]:
    """Results of every unit, converting those not cached; also returns the
    ids of the units converted now."""
    results = {}
    pending = []
    for unit in units:
        cached = _cached(folder, unit, cpu_limit_seconds)
        if cached is None:
            pending.append(unit)
        else:
            results[unit.id] = cached
    if pending:
        source_root = str(corpus_root() if root is None else root)
        # longest jobs first, so no core idles at the end on one slow score
        pending.sort(key=lambda u: (-estimated_cpu_seconds(u), u.id))
        jobs = [ConversionJob(u, source_root, str(folder / "midi"), cpu_limit_seconds) for u in pending]
        workers = min(workers or default_workers(), len(jobs))
        with ConversionProgress(pending, description, enabled=progress) as bar:
            for result in parallel_map(convert_unit, jobs, workers=workers, initializer=quiet_worker):
                _save(folder, result)
                results[result.unit.id] = result
                bar.done(result.unit)
    return [results[u.id] for u in units], {u.id for u in pending}


def build_corpus(
    name: str = DEFAULT_CORPUS,
    *,
    limit: int | None = None,
    shard: str | None = None,
    workers: int | None = None,
    cpu_limit_seconds: float | None = DEFAULT_CPU_LIMIT_SECONDS,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> CorpusBuild:
    """Convert (or find in the cache) the named corpus; ``limit`` and ``shard``
    select pieces as ``midilm prepare`` does, before converting, so a quick
    ``--limit 200`` converts only what it needs."""
    started = time.perf_counter()
    folder = cache_folder(cache_dir)
    units = corpus_units(name)
    wanted = select(
        [SourceFile(midi, midi, unit.licence, origin) for unit in units for midi, origin in unit.outputs()],
        limit=limit,
        shard=shard,
    )
    wanted_keys = {f.key for f in wanted}
    units = [u for u in units if any(midi in wanted_keys for midi, _ in u.outputs())]
    results, fresh = convert_units(
        units, folder, workers=workers, cpu_limit_seconds=cpu_limit_seconds, progress=progress, description=f"converting {name}"
    )
    pieces = [p for r in results for p in r.pieces if p.midi in wanted_keys]
    converted = sum(1 for r in results if r.unit.id in fresh for p in r.pieces if p.midi in wanted_keys)
    files = sorted(
        (SourceFile((folder / "midi" / p.midi).as_posix(), p.midi, p.licence, p.origin) for p in pieces if p.ok),
        key=lambda f: f.path,
    )
    build = CorpusBuild(name, folder, files, [p for p in pieces if not p.ok], converted, time.perf_counter() - started)
    _write_report(build, len(pieces))
    return build


def _write_report(build: CorpusBuild, n_pieces: int) -> None:
    report = {
        "corpus": build.name,
        "music21": music21_version(),
        "conversion_version": CONVERSION_VERSION,
        "pieces": n_pieces,
        "converted_ok": len(build.files),
        "failed": len(build.failures),
        "failures": [{"origin": p.origin, "reason": p.reason} for p in build.failures],
    }
    _write_json(build.report_path, report)
