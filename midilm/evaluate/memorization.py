"""Memorization check: the longest run of consecutive events that a sample
shares with the training data.

A model that copies its training files produces long runs of events found
verbatim in some training file. Finding the longest such run must stay fast
on a training split of millions of events, so every event row is hashed to 64
bits and every window of L consecutive events gets a polynomial hash built from
prefix sums (all numpy, arithmetic modulo 2**64). Whether a sample shares some
window of length L is monotone in L (a shared run of L events holds shared
runs of every shorter length), so a binary search over L needs about log2(L)
passes over the training hashes. Two different windows get the same 64-bit hash
with probability about 2**-64 per pair: negligible for this purpose.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from midilm import vocab

BASE = np.uint64(0x9E3779B97F4A7C15)
BASE_INVERSE = np.uint64(pow(int(BASE), -1, 2**64))
"""BASE is odd, so it has an inverse modulo 2**64: it turns a prefix-sum
difference into a hash that does not depend on where the window starts."""
MIX_1, MIX_2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
FILTER_BITS = 20
FILTER_SHIFT = np.uint64(64 - FILTER_BITS)


def event_rows(tokens: np.ndarray) -> np.ndarray:
    """The rows of a token array that are events (BOS, EOS and PAD rows dropped)."""
    first = tokens[:, 0]
    return tokens[(first >= vocab.FIRST_EVENT_ID) & (first <= vocab.LAST_EVENT_ID)]


def _scramble(x: np.ndarray) -> np.ndarray:
    """A bijective mix of 64-bit words (SplitMix64's finalizer): nearby inputs get unrelated outputs."""
    x = x ^ (x >> np.uint64(30))
    x = x * MIX_1
    x = x ^ (x >> np.uint64(27))
    x = x * MIX_2
    return x ^ (x >> np.uint64(31))


def row_hashes(rows: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row ``[n, 8]``. The row's eight 16-bit tokens are
    exactly two 64-bit words, so this reads each row as two numbers and mixes them."""
    words = np.ascontiguousarray(rows, dtype="<u2").view("<u8")
    return _scramble(_scramble(words[:, 0]) + words[:, 1])


class WindowHashes:
    """Hashes of every window of consecutive events inside each of several pieces
    (windows never span two pieces)."""

    def __init__(self, pieces: Sequence[np.ndarray]) -> None:
        rows = [event_rows(np.asarray(p)) for p in pieces]
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self.lengths = lengths
        n = int(lengths.sum())
        hashes = row_hashes(np.concatenate(rows)) if n else np.empty(0, dtype=np.uint64)
        powers = np.full(n, BASE, dtype=np.uint64)
        powers[:1] = 1
        inverse_powers = np.full(n, BASE_INVERSE, dtype=np.uint64)
        inverse_powers[:1] = 1
        self.prefix = np.concatenate([np.zeros(1, np.uint64), np.cumsum(hashes * np.cumprod(powers), dtype=np.uint64)])
        self.inverse_powers = np.cumprod(inverse_powers, dtype=np.uint64)
        self.room = (np.repeat(self.starts + lengths, lengths) - np.arange(n)).astype(np.int32)
        """Events from each position to the end of its piece."""

    @property
    def longest_piece(self) -> int:
        return int(self.lengths.max()) if len(self.lengths) else 0

    def windows(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        """The hash of the window of ``length`` events starting at every position
        (slices, no gathers: this is the hot loop), and whether that window
        lies inside one piece."""
        count = max(len(self.room) - length + 1, 0)
        hashes = (self.prefix[length : length + count] - self.prefix[:count]) * self.inverse_powers[:count]
        return hashes, self.room[:count] >= length

    def locate(self, position: int) -> tuple[int, int]:
        """(piece index, event index inside the piece) of a position."""
        piece = int(np.searchsorted(self.starts, position, side="right") - 1)
        return piece, position - int(self.starts[piece])


@dataclass(frozen=True)
class SharedRun:
    """The longest run of events a sample shares with the training pieces.

    Event indices count event rows only (0 = the first event after BOS);
    ``train_piece`` indexes the pieces given to :class:`MemorizationIndex` (-1 when nothing is shared)."""

    events: int
    sample_event: int = -1
    train_piece: int = -1
    train_event: int = -1


def _shared_hashes(train_hashes: np.ndarray, train_valid: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The hashes of ``wanted`` that occur among the valid training hashes.

    A bit table indexed by the top bits of each hash first discards almost
    every training window with one cheap lookup; only the few that pass are
    compared exactly."""
    table = np.zeros(1 << FILTER_BITS, dtype=bool)
    table[wanted >> FILTER_SHIFT] = True
    candidates = train_hashes[table[train_hashes >> FILTER_SHIFT] & train_valid]
    return wanted[np.isin(wanted, candidates)]


class MemorizationIndex:
    """The training pieces, hashed once, queried for many samples."""

    def __init__(self, train_pieces: Sequence[np.ndarray]) -> None:
        self.train = WindowHashes(train_pieces)

    def longest_shared_runs(self, samples: Sequence[np.ndarray]) -> list[SharedRun]:
        """For each sample, the longest run of consecutive events also found
        consecutively in one training piece (binary search on the length,
        one pass over the training hashes per distinct length tried in a round)."""
        sample_windows = [WindowHashes([s]) for s in samples]
        low = [0] * len(samples)
        high = [min(w.longest_piece, self.train.longest_piece) for w in sample_windows]
        while True:
            by_length: dict[int, list[int]] = defaultdict(list)
            for i in range(len(samples)):
                if low[i] < high[i]:
                    by_length[(low[i] + high[i] + 1) // 2].append(i)
            if not by_length:
                break
            for length, members in by_length.items():
                wanted = {i: sample_windows[i].windows(length)[0] for i in members}
                shared = _shared_hashes(*self.train.windows(length), np.concatenate(list(wanted.values())))
                for i in members:
                    if np.isin(wanted[i], shared).any():
                        low[i] = length
                    else:
                        high[i] = length - 1
        return [self._run(window, length) for window, length in zip(sample_windows, low, strict=True)]

    def _run(self, sample: WindowHashes, length: int) -> SharedRun:
        if length == 0:
            return SharedRun(0)
        sample_hashes = sample.windows(length)[0]
        train_hashes, train_valid = self.train.windows(length)
        shared = _shared_hashes(train_hashes, train_valid, sample_hashes)[0]
        sample_event = int(np.flatnonzero(sample_hashes == shared)[0])
        piece, train_event = self.train.locate(int(np.flatnonzero((train_hashes == shared) & train_valid)[0]))
        return SharedRun(length, sample_event, piece, train_event)
