"""``prepare``: MIDI files -> a token store, in parallel, incrementally, crash-safe.

A run lists the sources, reuses every result the store (or the journal of an
interrupted run) already holds for an unchanged file, tokenizes the rest
over a process pool, and commits one new generation whose manifest is a pure
function of the results (:func:`midilm.data.manifest.resolve`). Scripts that
call :func:`prepare` with ``workers > 1`` need the usual multiprocessing
guard, ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from midilm.data.integrity import stream_sha256
from midilm.data.manifest import RESULT_FIELDS, counts, identity, resolve, result_of
from midilm.data.sources import SourceFile, discover, select
from midilm.data.split import SplitFile, check_ratios
from midilm.data.store import SPLITS
from midilm.data.workers import DEFAULT_CPU_LIMIT_SECONDS, TimeLimitExceeded, default_workers, parallel_map, time_limit
from midilm.data.writer import StoreWriter
from midilm.errors import ConfigError, MidiFileError
from midilm.files import NotRegularFileError, open_regular
from midilm.tokenizer import TokenizerOptions, check_quality, summarize, tokenize
from midilm.tokenizer.api import MAX_FILE_BYTES, check_size


@dataclass(frozen=True)
class PrepareOptions:
    """How ``midilm prepare`` reads sources and builds the store (the tokenizer's options are separate)."""

    workers: int | None = field(default=None, metadata={"help": "processes that convert and tokenize (default: all cores)"})
    limit: int | None = field(
        default=None, metadata={"help": "take a deterministic sample of N files, for quick iteration", "metavar": "N"}
    )
    split_ratios: tuple[float, ...] = field(default=(0.8, 0.1, 0.1), metadata={"help": "train,val,test shares of the content-hash split"})
    split_file: str | None = field(
        default=None,
        metadata={
            "help": "file of 'path split' lines or a CSV with path and split columns; overrides the hash split for the files it names",
            "metavar": "F",
        },
    )
    quality_filter: bool = field(
        default=False, metadata={"help": "leave files that fail the tokenizer's quality check out of the splits (status 'filtered')"}
    )
    shard: str | None = field(
        default=None, metadata={"help": "prepare only share i of n of the sources (merge the shards with --merge)", "metavar": "i/n"}
    )
    cpu_limit_seconds: float = field(
        default=DEFAULT_CPU_LIMIT_SECONDS,
        metadata={
            "help": "give up on a file (tokenizing) or a corpus piece (converting) after this much CPU time; a guard against pathological inputs"
        },
    )


@dataclass
class PrepareSummary:
    """What a prepare (or merge) run did and what the store now holds."""

    out: str
    identity: str
    counts: dict[str, Any]
    tokenized: int = 0
    """Files read and tokenized by this run."""
    reused: int = 0
    """Unchanged files whose results the store already held."""
    resumed: int = 0
    """Files finished by an interrupted run and taken from its journal."""
    removed: int = 0
    """Files of the previous store no longer among the sources."""
    rebuilt_because: str = ""
    repaired: int = 0
    """Files of the store whose token rows were missing or damaged, so were tokenized again."""
    damage: str = ""
    """What was wrong with the store's token file when this run opened it."""
    committed: bool = True
    """False when nothing changed, so the store was left as it was."""
    seconds: float = 0.0
    corpus: Any = None
    """The :class:`~midilm.data.corpus.CorpusBuild` when the bundled corpus was prepared."""

    @property
    def files_per_second(self) -> float:
        return self.tokenized / self.seconds if self.seconds > 0 else 0.0

    def format(self) -> str:
        c = self.counts
        status = c["by_status"]
        lines = []
        if self.corpus is not None:
            build = self.corpus
            pieces = len(build.files) + len(build.failures)
            lines.append(
                f"corpus {build.name}: {pieces} pieces ({build.converted} converted now, {pieces - build.converted} from the cache), "
                f"{len(build.files)} MIDI files; {len(build.failures)} failed to convert (see {build.report_path})"
            )
            licences = Counter(f.licence for f in build.files)
            lines.append("  licences: " + ", ".join(f"{n} {licence}" for licence, n in licences.most_common()) + " (see docs/corpus.md)")
        lines += [
            f"{self.out}: {status['ok']} files ok, {status['duplicate']} duplicates, {status['filtered']} filtered, {status['error']} errors (of {c['files_seen']} seen)"
        ]
        work = (
            f"tokenized {self.tokenized} files in {self.seconds:.1f} s ({self.files_per_second:.1f} files/s)"
            if self.tokenized
            else f"nothing to tokenize ({self.seconds:.1f} s)"
        )
        lines.append(f"  {work}; reused {self.reused}, resumed {self.resumed}, removed {self.removed}")
        if self.rebuilt_because:
            lines.append(f"  rebuilt: {self.rebuilt_because}")
        if self.damage:
            lines.append(f"  repaired: {self.damage}; tokenized {self.repaired} file(s) again")
        for kind, n in c["errors_by_kind"].items():
            lines.append(f"  skipped {n:>6}: {kind}")
        for reason, n in c["dropped_events"].items():
            lines.append(f"  events dropped {n:>8}: {reason}")
        for name in SPLITS:
            entry = c["splits"][name]
            lines.append(f"  {name:<5} {entry['files']:>7} files {entry['events']:>11} events {entry['tokens']:>12} tokens")
        lines.append(f"  identity {self.identity}" + ("" if self.committed else " (unchanged)"))
        return "\n".join(lines)


def tokenize_file(path: str, *, options: TokenizerOptions, cpu_limit_seconds: float | None) -> tuple[dict[str, Any], np.ndarray | None]:
    """Read, hash, tokenize, summarise and quality-check one file (runs in a
    worker). Never raises for a bad file: the result carries ``error``."""
    result: dict[str, Any] = {"path": path, **{name: None for name in RESULT_FIELDS}}
    try:
        with open_regular(path) as handle:
            stat = os.fstat(handle.fileno())
            check_size(stat.st_size, MAX_FILE_BYTES, Path(path))
            data = handle.read(MAX_FILE_BYTES + 1)  # a file growing while read is still refused by the tokenizer
    except MidiFileError as exc:
        result["error"] = exc.reason
        return result, None
    except NotRegularFileError as exc:
        result["error"] = exc.strerror
        return result, None
    except OSError as exc:
        result["error"] = f"cannot read: {exc.strerror or exc}"
        return result, None
    except MemoryError:
        result["error"] = "cannot read: the file does not fit in memory"
        return result, None
    result.update(sha256=hashlib.sha256(data).hexdigest(), size=stat.st_size, mtime_ns=stat.st_mtime_ns)
    try:
        with time_limit(cpu_limit_seconds):
            tokenized = tokenize(data, options)
            tokens = tokenized.tokens
            summary = summarize(tokens)
            quality_ok, quality_reasons = check_quality(tokens)
    except TimeLimitExceeded:
        result["error"] = f"gave up after {cpu_limit_seconds:g} CPU-seconds"
        return result, None
    except MidiFileError as exc:
        result["error"] = exc.reason
        return result, None
    except Exception as exc:  # a tokenizer bug must not stop a million-file run: record it for a report
        result["error"] = f"internal error: {type(exc).__name__}: {exc}"
        return result, None
    if not summary.notes:
        result["error"] = "no notes: nothing to learn from"
        return result, None
    result.update(
        tokens_sha256=stream_sha256(tokens),
        events=int(summary.events),
        notes=int(summary.notes),
        seconds=round(float(summary.seconds), 3),
        dropped=dict(sorted(tokenized.report.dropped.items())),
        warnings=list(tokenized.report.warnings),
        quality_ok=bool(quality_ok),
        quality_reasons=list(quality_reasons),
    )
    return result, tokens


def split_settings(options: PrepareOptions, split_file: SplitFile | None) -> dict[str, Any]:
    """The settings that decide splits and statuses, recorded in the store header."""
    return {
        "split_ratios": list(check_ratios(options.split_ratios)),
        "split_file": str(split_file.path) if split_file else None,
        "split_file_sha256": split_file.text_sha256 if split_file else None,
        "quality_filter": options.quality_filter,
    }


def _file_sha256(path: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with open_regular(path) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def prepare(
    sources: Sequence[str | os.PathLike | SourceFile],
    out: str | os.PathLike,
    options: PrepareOptions | None = None,
    tokenizer_options: TokenizerOptions | None = None,
    *,
    progress: bool = True,
    extra_header: dict[str, Any] | None = None,
) -> PrepareSummary:
    """Prepare the files the sources name into the store at ``out`` (created or updated).

    Returns what was done and what the store holds. Raises ConfigError when no
    source is readable or a setting cannot work, StoreError when the store
    cannot be written (another writer, no space).
    """
    from tqdm import tqdm

    started = time.perf_counter()
    options = options or PrepareOptions()
    tokenizer_options = tokenizer_options or TokenizerOptions()
    split_file = SplitFile(options.split_file) if options.split_file else None
    settings = split_settings(options, split_file)
    files = select(discover(sources), limit=options.limit, shard=options.shard)
    if not files:
        raise ConfigError(f"no MIDI files (.mid/.midi) found in {', '.join(str(s) for s in sources) or 'the sources'}")
    provenance = {f.path: (f.licence, f.origin) for f in files}
    spec = tokenizer_options.spec()
    summary = PrepareSummary(out=str(out), identity="", counts={})
    with StoreWriter(out, spec) as writer:
        summary.rebuilt_because = writer.rebuild_reason
        summary.damage, summary.repaired = writer.damage, len(writer.repaired)
        results, todo = _plan(files, writer, summary)
        if todo:
            job = partial(tokenize_file, options=tokenizer_options, cpu_limit_seconds=options.cpu_limit_seconds)
            workers = min(options.workers or default_workers(), len(todo))
            with tqdm(total=len(todo), unit="file", desc="tokenizing", disable=not progress, smoothing=0.05) as bar:
                # small batches: one file takes milliseconds, less than sending it to a worker
                chunksize = max(1, min(32, len(todo) // (workers * 16)))
                for result, tokens in parallel_map(job, todo, workers=workers, chunksize=chunksize):
                    results[result["path"]] = result_of(writer.append(result, tokens), result["path"])
                    bar.update()
            summary.tokenized = len(todo)
        rows, index = resolve(
            list(results.values()),
            ratios=settings["split_ratios"],
            split_file=split_file,
            quality_filter=options.quality_filter,
            provenance=provenance,
        )
        summary.identity = identity(spec, rows)
        summary.counts = counts(rows)
        unchanged = (
            not writer.journaled
            and not writer.damage
            and writer.header is not None
            and "checksums" in writer.header
            and writer.header.get("settings") == settings
            and writer.header["identity"] == summary.identity
            and writer.header["counts"] == summary.counts
            and rows == list(writer.committed.values())
        )
        if unchanged:
            summary.committed = False
        else:
            header = {"identity": summary.identity, "counts": summary.counts, "settings": settings, **(extra_header or {})}
            writer.commit(rows, index, header)
    summary.seconds = time.perf_counter() - started
    return summary


def _plan(files: list[SourceFile], writer: StoreWriter, summary: PrepareSummary) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Results reused from the store or the journal, and the paths left to tokenize."""
    known = {**writer.committed, **writer.journaled}
    by_content = {r["sha256"]: r for r in known.values() if r.get("sha256") and (r.get("count") or r.get("error"))}
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for file in files:
        prior = known.get(file.path)
        try:
            stat = os.stat(file.path)
        except OSError:
            todo.append(file.path)  # the worker records why it cannot be read
            continue
        if prior is not None and prior.get("size") == stat.st_size and prior.get("mtime_ns") == stat.st_mtime_ns:
            results[file.path] = result_of(prior, file.path)
            if file.path in writer.journaled:
                summary.resumed += 1
            else:
                summary.reused += 1
            continue
        same = by_content.get(_file_sha256(file.path)) if by_content else None
        if same is None:
            todo.append(file.path)
            continue
        # known bytes under a new name or a new time stamp: reuse, and journal it
        entry = {**result_of(same, file.path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        results[file.path] = result_of(writer.append(entry, None), file.path)
        summary.reused += 1
    current = {f.path for f in files}
    summary.removed = sum(1 for path in writer.committed if path not in current)
    return results, todo


def prepare_corpus(
    name: str | None = None,
    out: str | os.PathLike | None = None,
    options: PrepareOptions | None = None,
    tokenizer_options: TokenizerOptions | None = None,
    *,
    progress: bool = True,
) -> PrepareSummary:
    """Convert the bundled music21 corpus ``name`` (default: the default corpus)
    to MIDI if not cached, then prepare it into ``out`` (default:
    :func:`~midilm.data.paths.default_store_path`). Each record carries the
    piece's licence and its origin in the music21 corpus."""
    from midilm.data.corpus import DEFAULT_CORPUS, build_corpus
    from midilm.data.paths import default_store_path

    name = name or DEFAULT_CORPUS
    options = options or PrepareOptions()
    build = build_corpus(
        name,
        limit=options.limit,
        shard=options.shard,
        workers=options.workers,
        cpu_limit_seconds=options.cpu_limit_seconds,
        progress=progress,
    )
    if not build.files:
        raise ConfigError(f"corpus {name}: no piece could be converted (see {build.report_path})")
    corpus_header = {"corpus": {"name": name, "music21": build.folder.name, "conversion_failures": len(build.failures)}}
    summary = prepare(
        build.files, out or default_store_path(name), options, tokenizer_options, progress=progress, extra_header=corpus_header
    )
    summary.corpus = build
    return summary
