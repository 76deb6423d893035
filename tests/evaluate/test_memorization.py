"""Longest runs of events shared with training pieces: planted runs and a brute-force check."""

from __future__ import annotations

import numpy as np
import pytest

from midilm import vocab
from midilm.evaluate.memorization import MemorizationIndex, SharedRun, event_rows

BOS_ROW = [vocab.BOS] + [vocab.PAD] * 7
EOS_ROW = [vocab.EOS] + [vocab.PAD] * 7


def piece(events: np.ndarray) -> np.ndarray:
    """A token array from event rows [n, 8], with BOS and EOS rows around them."""
    return np.concatenate([[BOS_ROW], events, [EOS_ROW]]).astype(vocab.TOKEN_DTYPE)


def random_events(rng: np.random.Generator, n: int, alphabet: int = 3000, columns: int = 7) -> np.ndarray:
    """Note-like rows whose first ``columns`` parameters are drawn from ``alphabet`` values (the rest fixed)."""
    rows = np.full((n, 8), vocab.PARAM_OFFSET["time1"], dtype=vocab.TOKEN_DTYPE)
    rows[:, 0] = vocab.EVENT_ID["note"]
    rows[:, 1 : 1 + columns] += rng.integers(0, alphabet, (n, columns)).astype(vocab.TOKEN_DTYPE)
    return rows


def brute_force_longest(sample: np.ndarray, pieces: list[np.ndarray]) -> int:
    """Longest common run of rows by dynamic programming (slow, obviously right)."""
    a = [tuple(r) for r in event_rows(sample)]
    best = 0
    for p in pieces:
        b = [tuple(r) for r in event_rows(p)]
        run = [0] * (len(b) + 1)
        for x in a:
            previous = 0
            for j, y in enumerate(b, start=1):
                previous, run[j] = run[j], (previous + 1 if x == y else 0)
                best = max(best, run[j])
    return best


def test_a_planted_run_is_found_with_its_place():
    rng = np.random.default_rng(0)
    train = [piece(random_events(rng, n)) for n in (300, 500, 200)]
    sample_events = random_events(rng, 120)
    sample_events[40:77] = event_rows(train[1])[250:287]
    [run] = MemorizationIndex(train).longest_shared_runs([piece(sample_events)])
    assert run == SharedRun(events=37, sample_event=40, train_piece=1, train_event=250)


def test_a_copied_piece_and_an_unrelated_piece():
    rng = np.random.default_rng(1)
    train = [piece(random_events(rng, 400)) for _ in range(3)]
    copied = train[2][:101]  # BOS and the first 100 events
    unrelated = piece(random_events(rng, 100))
    runs = MemorizationIndex(train).longest_shared_runs([copied, unrelated])
    assert runs == [SharedRun(100, 0, 2, 0), SharedRun(0)]


def test_runs_do_not_span_two_training_pieces():
    rng = np.random.default_rng(2)
    train = [piece(random_events(rng, 50)), piece(random_events(rng, 50))]
    # the last 30 events of piece 0 followed by the first 20 of piece 1: 50 in a row
    # in the concatenation of the training data, but at most 30 inside one piece
    sample = piece(np.concatenate([event_rows(train[0])[-30:], event_rows(train[1])[:20]]))
    assert MemorizationIndex(train).longest_shared_runs([sample])[0].events == 30


def test_agrees_with_brute_force_on_a_small_alphabet():
    # four distinct rows, so many partial matches compete with the longest one
    rng = np.random.default_rng(3)
    train = [piece(random_events(rng, int(n), alphabet=4, columns=1)) for n in rng.integers(5, 60, 12)]
    samples = [piece(random_events(rng, int(n), alphabet=4, columns=1)) for n in rng.integers(1, 40, 10)]
    runs = MemorizationIndex(train).longest_shared_runs(samples)
    assert [r.events for r in runs] == [brute_force_longest(s, train) for s in samples]
    for sample, run in zip(samples, runs, strict=True):
        if run.events:
            shared = event_rows(sample)[run.sample_event : run.sample_event + run.events]
            np.testing.assert_array_equal(shared, event_rows(train[run.train_piece])[run.train_event : run.train_event + run.events])


@pytest.mark.parametrize("train", [[], [piece(np.zeros((0, 8), dtype=vocab.TOKEN_DTYPE))]])
def test_empty_training_data_shares_nothing(train):
    sample = piece(random_events(np.random.default_rng(4), 10))
    assert MemorizationIndex(train).longest_shared_runs([sample]) == [SharedRun(0)]
