"""The encoder's group-by kit: the sort of one packed key (large tables) and
numpy's lexicographic sort (small ones) give the same order and groups."""

from __future__ import annotations

import numpy as np
import pytest

from midilm.tokenizer.encoder import grouping


@pytest.mark.parametrize("seed", range(5))
def test_packed_key_sort_equals_lexsort(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    count = int(rng.integers(2, 3000))
    columns = (
        np.sort(rng.integers(0, 3, count)).astype(np.int16),  # nearly sorted, like a track's events
        rng.integers(-5, 40, count).astype(np.int32),
        rng.integers(0, 2, count).astype(np.int8),
        rng.integers(0, 1 << 50, count) if seed == 4 else rng.integers(0, 7, count),  # too wide to pack: the fallback
    )
    monkeypatch.setattr(grouping, "SMALL", 1 << 30)
    by_lexsort = grouping.sort_groups(*columns)
    monkeypatch.setattr(grouping, "SMALL", 2)
    packed = grouping.sort_groups(*columns)
    for one, two in zip(by_lexsort, packed, strict=True):
        np.testing.assert_array_equal(one, two)
    assert (grouping.sort_order(*columns) == by_lexsort[0]).all()
