"""The full default corpus, from nothing to a store, as `midilm prepare` with no arguments does it (slow)."""

from __future__ import annotations

import resource
import time

import pytest

from midilm.data import TokenStore, default_store_path, prepare_corpus
from midilm.data.corpus import DEFAULT_CORPUS


def cpu_seconds() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


@pytest.mark.slow
def test_default_corpus_prepares_within_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("MIDILM_HOME", str(tmp_path))
    cpu_before, started = cpu_seconds(), time.monotonic()
    summary = prepare_corpus(progress=False)
    cpu = cpu_seconds() - cpu_before
    print(f"default corpus: {time.monotonic() - started:.0f} s wall, {cpu:.0f} CPU-seconds")
    assert cpu < 2 * 300, "the default must be ready in under 5 minutes on 2 idle cores"
    store = TokenStore(default_store_path())
    assert store.path.name == DEFAULT_CORPUS
    assert len(store) >= 2000 and not summary.corpus.failures
    origins = [r["origin"] for r in store.records]
    assert sum(o.startswith("music21:bach/") for o in origins) >= 400
    assert not any("palestrina" in o for o in origins)
    assert {r["licence"] for r in store.records} == {"music21-corpus", "essen-noncommercial"}
    assert all(len(store.split(name)) for name in ("train", "val", "test"))
