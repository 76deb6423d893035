"""The full default corpus as `midilm prepare` with no arguments makes it (slow).

The conversion goes to midilm's cache, as `midilm prepare` does, so it is made once per machine and shared
with the first command (`scripts/quickstart.sh`) and every later test session; only the store is written
afresh. How long the conversion takes is measured by `bench/corpus.py --full`, not asserted here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from midilm.data import TokenStore, default_store_path, prepare_corpus
from midilm.data.corpus import DEFAULT_CORPUS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_corpus(tmp_path_factory: pytest.TempPathFactory):
    """The default corpus converted (or found) in the cache and prepared into a new store: (store, summary)."""
    out = tmp_path_factory.mktemp("default-corpus") / "store"
    summary = prepare_corpus(out=out, progress=False)
    return TokenStore(out), summary


def test_the_default_store_lives_in_the_cache_under_the_corpus_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIDILM_HOME", str(tmp_path))
    assert default_store_path() == tmp_path / "stores" / DEFAULT_CORPUS


def test_the_default_corpus_is_bach_and_essen_with_their_licences(default_corpus) -> None:
    store, summary = default_corpus
    assert len(store) >= 2000 and not summary.corpus.failures
    assert store.header["corpus"]["name"] == DEFAULT_CORPUS
    origins = [r["origin"] for r in store.records]
    assert sum(o.startswith("music21:bach/") for o in origins) >= 400
    assert not any("palestrina" in o for o in origins)
    assert {r["licence"] for r in store.records} == {"music21-corpus", "essen-noncommercial"}
    assert all(len(store.split(name)) for name in ("train", "val", "test"))
