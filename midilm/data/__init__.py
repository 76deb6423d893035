"""Corpus pipeline: sources and the bundled corpus -> ``prepare`` -> ``TokenStore`` -> training views.

Torch-free; the torch Dataset wrappers live in :mod:`midilm.data.datasets`.
"""

from midilm.data.merge import merge
from midilm.data.paths import cache_root, default_store_path
from midilm.data.prepare import PrepareOptions, PrepareSummary, prepare, prepare_corpus
from midilm.data.sources import SourceFile, discover, select
from midilm.data.store import SPLITS, TokenStore
from midilm.data.views import EventWindows, TokenWindows

__all__ = [
    "SPLITS",
    "EventWindows",
    "PrepareOptions",
    "PrepareSummary",
    "SourceFile",
    "TokenStore",
    "TokenWindows",
    "cache_root",
    "default_store_path",
    "discover",
    "merge",
    "prepare",
    "prepare_corpus",
    "select",
]
