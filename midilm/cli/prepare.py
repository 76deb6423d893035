"""``midilm prepare``: MIDI files (or the bundled music21 corpus) -> a token store."""

from __future__ import annotations

import argparse
import sys

from midilm.config import add_dataclass_arguments, apply_arguments, given_arguments
from midilm.data.corpus.catalog import CORPORA, DEFAULT_CORPUS
from midilm.data.prepare import PrepareOptions
from midilm.errors import ConfigError
from midilm.tokenizer import TokenizerOptions

HELP = f"""Tokenize MIDI files into a token store that training memory-maps.

With no SOURCE, converts the bundled music21 corpus ({DEFAULT_CORPUS}; choose another with
--corpus) to MIDI on this machine, once, and prepares it into the cache (see `--out`).
Reruns tokenize only new or changed files; a run killed at any moment resumes where it stopped.
Exit status 0 when the run completed (unreadable files are reported, not fatal); 1 when no
file could be tokenized; 2 on a usage or storage error; 130 when interrupted.

corpora: {", ".join(CORPORA)}

examples:
  midilm prepare                                     the default corpus, ready for `midilm train`
  midilm prepare --corpus music21-all                every music21 collection except Palestrina
  midilm prepare ~/midi/adl --out stores/adl         a folder (recursive .mid/.midi)
  midilm prepare list.txt --out stores/try --limit 500
  midilm prepare ~/midi/lakh --out shards/0 --shard 0/4     (shards 1/4 .. 3/4 elsewhere), then
  midilm prepare --merge shards/0 shards/1 shards/2 shards/3 --out stores/lakh
"""

SPLIT_FIELDS = ("split_ratios", "split_file", "quality_filter")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "sources", nargs="*", metavar="SOURCE", help="folders, .mid/.midi files, or text files listing paths (default: the bundled corpus)"
    )
    parser.add_argument(
        "--out",
        metavar="STORE",
        help="store folder to create or update (default without SOURCE: <cache>/stores/<corpus>; $MIDILM_HOME moves the cache)",
    )
    parser.add_argument(
        "--corpus", choices=tuple(CORPORA), help=f"bundled corpus to prepare when no SOURCE is given (default: {DEFAULT_CORPUS})"
    )
    parser.add_argument(
        "--merge", nargs="+", metavar="STORE", help="merge these stores (e.g. shards) into a new store at --out instead of preparing"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_dataclass_arguments(parser.add_argument_group("preparing"), PrepareOptions)
    add_dataclass_arguments(parser.add_argument_group("tokenizer"), TokenizerOptions)


def run(args: argparse.Namespace) -> int:
    from midilm.data import merge, prepare, prepare_corpus

    options = apply_arguments(PrepareOptions(), args)
    tokenizer_options = apply_arguments(TokenizerOptions(), args)
    progress = not args.quiet
    if args.merge:
        if args.sources or args.corpus:
            raise ConfigError("--merge takes stores, not SOURCE or --corpus")
        if not args.out:
            raise ConfigError("--merge needs --out, the new store to create")
        explicit = any(name in SPLIT_FIELDS for name in given_arguments(args, PrepareOptions))
        summary = merge(args.merge, args.out, options if explicit else None, progress=progress)
    elif args.sources:
        if args.corpus:
            raise ConfigError("--corpus chooses a bundled corpus and applies only when no SOURCE is given")
        if not args.out:
            raise ConfigError("SOURCE given without --out: say where to write the store")
        summary = prepare(args.sources, args.out, options, tokenizer_options, progress=progress)
    else:
        if options.shard and not args.out:
            raise ConfigError("--shard needs --out: each shard is its own store until --merge")
        summary = prepare_corpus(args.corpus, args.out, options, tokenizer_options, progress=progress)
    print(summary.format())
    if not any(summary.counts["by_status"][status] for status in ("ok", "duplicate", "filtered")):
        print("midilm prepare: no source file could be tokenized (see the reasons above)", file=sys.stderr)
        return 1
    return 0
