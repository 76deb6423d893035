"""Where midilm keeps what it builds on the user's machine.

One cache root holds the converted music21 corpus and the stores prepared
from it, so that ``midilm prepare`` and ``midilm train`` with no arguments
agree on where the default data lives.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "MIDILM_HOME"
"""Environment variable that overrides the cache root."""


def cache_root() -> Path:
    """``$MIDILM_HOME`` if set, else ``~/.cache/midilm``."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "midilm"


def default_store_path(corpus: str | None = None) -> Path:
    """The store that ``midilm prepare`` writes when given no SOURCE, and the
    default ``--data`` of training: ``<cache root>/stores/<corpus name>``."""
    from midilm.data.corpus.catalog import DEFAULT_CORPUS

    return cache_root() / "stores" / (corpus or DEFAULT_CORPUS)
