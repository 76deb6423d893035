"""Training views over a token store: fixed-size windows, computed, never listed.

A split's files are cut into windows of ``window_positions`` positions (tokens for
:class:`TokenWindows`, event rows for :class:`EventWindows`) every
``stride_positions`` positions, starting at event boundaries. Windows are *padded, not
packed*: a file shorter than a window gives one window padded with PAD (id
0, which the loss ignores), and each file's tail is kept by a last window
that ends at the file's end. Windows never span two files.

Nothing per window is stored: item ``i`` is found by a binary search over
the cumulative window counts of the split's files, so memory is a few int64
per file whatever the corpus size; tokens are read from the store's memory
map when an item is asked for.

``random_offset`` shifts each file's windows by a random multiple of an
event (less than ``stride_positions``), drawn anew by :meth:`set_epoch`; the first
positions of a file are then skipped for that epoch, the last window stays
clamped to the file's end. ``augment`` applies the tokenizer's random
transposition / velocity / tempo shifts to each item, seeded by (seed,
epoch, item) so that a resumed run sees the same data; it is refused on
val/test.
"""

from __future__ import annotations

import numpy as np

from midilm import vocab
from midilm.data.store import SPLITS, TokenStore
from midilm.errors import ConfigError


class _Windows:
    """Window arithmetic shared by the token and event views (positions are
    tokens or rows; ``align`` positions make one event)."""

    align: int = 1

    def __init__(
        self,
        store: TokenStore,
        split: str,
        window_positions: int,
        stride_positions: int,
        *,
        random_offset: bool = False,
        augment: bool = False,
        seed: int = 0,
        anticipation: int = 0,
    ) -> None:
        if split not in SPLITS:
            raise ConfigError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
        if window_positions < 1 or stride_positions < 1:
            raise ConfigError(f"window length {window_positions} and stride {stride_positions} must be positive")
        if stride_positions % self.align:
            raise ConfigError(
                f"stride {stride_positions} must be a multiple of {self.align} tokens, so that every window starts at an event"
            )
        if stride_positions > window_positions:
            raise ConfigError(
                f"stride {stride_positions} is longer than the window ({window_positions}): positions between windows would never be seen"
            )
        if augment and split != "train":
            raise ConfigError(f"augmentation is for training only, not the {split} split")
        self.store, self.split, self.window_positions, self.stride_positions = store, split, window_positions, stride_positions
        self.random_offset, self.augment, self.seed = random_offset, augment, seed
        self.anticipation = anticipation
        """1/16 beats kept events are written ahead in each item (0: plain items; see midilm.data.anticipate);
        the targets of anticipated rows are PAD: the model learns to read them, not to predict them"""
        self.files = store.split(split)
        """Store indices of the split's files, in store order."""
        self._offsets = store.index[self.files, 0]
        self._sizes = store.index[self.files, 1] * self.align  # positions per file
        longer = np.maximum(self._sizes - window_positions, 0)
        self._counts = np.where(self._sizes <= window_positions, 1, -(-longer // stride_positions) + 1)
        self._first = np.concatenate([[0], np.cumsum(self._counts)])
        self._last_start = -(-longer // self.align) * self.align  # ends at the file's end (or past it, padded)
        self.epoch = 0
        self._shift = np.zeros(len(self.files), dtype=np.int64)

    def __len__(self) -> int:
        return int(self._first[-1])

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's window offsets (when ``random_offset``) and augmentation seeds."""
        self.epoch = epoch
        if self.random_offset and len(self.files):
            rng = np.random.default_rng([self.seed, epoch])
            self._shift = rng.integers(0, self.stride_positions // self.align, size=len(self.files), dtype=np.int64) * self.align

    def _locate(self, i: int) -> tuple[int, int]:
        """(position of the file in the split, start position) of item ``i``."""
        if not 0 <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows of the {self.split} split")
        j = int(np.searchsorted(self._first, i, side="right")) - 1
        start = min(int(i - self._first[j]) * self.stride_positions + int(self._shift[j]), int(self._last_start[j]))
        return j, start

    def window(self, i: int) -> tuple[int, int]:
        """(store file index, start position) of item ``i``."""
        j, start = self._locate(i)
        return int(self.files[j]), start

    def _rows(self, i: int, j: int, first_row: int, n_rows: int) -> np.ndarray:
        """Up to ``n_rows`` event rows of the split's file ``j`` from
        ``first_row``, as int64, augmented for item ``i`` when asked."""
        available = int(self._sizes[j]) // self.align - first_row
        rows = self.store.rows(int(self._offsets[j]) + first_row, max(0, min(n_rows, available)))
        if self.augment:
            from midilm.tokenizer import augment

            rows = augment(np.array(rows), rng=np.random.default_rng([self.seed, self.epoch, i]))
        rows = np.asarray(rows, dtype=np.int64)
        if self.anticipation:
            from midilm.data.anticipate import anticipation_example

            rows = anticipation_example(rows, self.anticipation, np.random.default_rng([self.seed, self.epoch, i, 1]))
        return rows


class TokenWindows(_Windows):
    """Item ``i`` -> ``(inputs, targets)``, int64 ``[window_tokens]`` each: a window of
    the flat token stream of one file and the same stream shifted by one
    (the next token of each input), PAD past the file's end."""

    align = vocab.EVENT_LEN

    def __init__(
        self,
        store: TokenStore,
        split: str,
        window_tokens: int = 512,
        stride_tokens: int = 256,
        *,
        random_offset: bool = False,
        augment: bool = False,
        seed: int = 0,
        anticipation: int = 0,
    ) -> None:
        super().__init__(
            store, split, window_tokens, stride_tokens, random_offset=random_offset, augment=augment, seed=seed, anticipation=anticipation
        )
        self.window_tokens = window_tokens

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        j, start = self._locate(i)
        n_rows = -(-(self.window_tokens + 1) // self.align)
        rows = self._rows(i, j, start // self.align, n_rows)
        flat = rows.reshape(-1)[: self.window_tokens + 1]
        buffer = np.full(self.window_tokens + 1, vocab.PAD, dtype=np.int64)
        buffer[: len(flat)] = flat
        targets = buffer[1:].copy()
        if self.anticipation:
            read_only = np.zeros(self.window_tokens + 1, dtype=bool)
            read_only[: len(flat)] = np.repeat(_anticipated(rows), self.align)[: len(flat)]
            targets[read_only[1:]] = vocab.PAD
        return buffer[:-1], targets


class EventWindows(_Windows):
    """Item ``i`` -> ``(inputs, targets)``, int64 ``[window_events, 8]`` each: a
    window of one file's event rows and, for each, the row that follows it;
    PAD rows past the file's end."""

    def __init__(
        self,
        store: TokenStore,
        split: str,
        window_events: int,
        stride_events: int | None = None,
        *,
        random_offset: bool = False,
        augment: bool = False,
        seed: int = 0,
        anticipation: int = 0,
    ) -> None:
        if stride_events is None:
            stride_events = max(1, window_events // 2)
        super().__init__(
            store, split, window_events, stride_events, random_offset=random_offset, augment=augment, seed=seed, anticipation=anticipation
        )
        self.window_events = window_events

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        j, start = self._locate(i)
        rows = self._rows(i, j, start, self.window_events + 1)
        buffer = np.full((self.window_events + 1, vocab.EVENT_LEN), vocab.PAD, dtype=np.int64)
        buffer[: len(rows)] = rows
        targets = buffer[1:].copy()
        if self.anticipation:
            targets[_anticipated(targets)] = vocab.PAD
        return buffer[:-1], targets


def _anticipated(rows: np.ndarray) -> np.ndarray:
    """Which rows are anticipated (kept) events: the model reads them and is not trained to predict them."""
    from midilm.anticipation import is_anticipated

    return is_anticipated(rows[:, 0])
