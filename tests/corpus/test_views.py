"""Training views: every file covered, windows aligned to events, targets shifted, padding, epochs, augmentation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from midilm import vocab
from midilm.data import EventWindows, TokenStore, TokenWindows
from midilm.data.datasets import RankSampler, WindowDataset, rank_indices
from midilm.errors import ConfigError


@pytest.fixture(scope="module")
def store(tmp_path_factory, golden_dir, golden_pieces) -> TokenStore:
    """All golden pieces in the train split (short and long files alike)."""
    import shutil

    from midilm.data import PrepareOptions, prepare

    folder = tmp_path_factory.mktemp("pieces")
    for name in golden_pieces:
        shutil.copy(golden_dir / f"{name}.mid", folder)
    out = tmp_path_factory.mktemp("store")
    prepare([folder], out, PrepareOptions(workers=1, split_ratios=(1.0, 0.0, 0.0)), progress=False)
    return TokenStore(out)


def covered_positions(view, unit: int) -> dict[int, set[int]]:
    """Positions (tokens or rows) of each file that some window holds as input."""
    seen: dict[int, set[int]] = {}
    for i in range(len(view)):
        file, start = view.window(i)
        size = len(view.store.tokens(file)) * unit
        seen.setdefault(file, set()).update(range(start, min(start + view.window_positions, size)))
    return seen


@pytest.mark.parametrize(("window_tokens", "stride_tokens"), [(512, 256), (64, 64), (40, 16)])
def test_token_windows_cover_every_file_and_start_at_events(store, window_tokens, stride_tokens):
    view = TokenWindows(store, "train", window_tokens=window_tokens, stride_tokens=stride_tokens)
    coverage = covered_positions(view, vocab.EVENT_LEN)
    assert sorted(coverage) == store.split("train").tolist()  # no file dropped, short ones included
    for file, positions in coverage.items():
        assert positions == set(range(len(store.tokens(file)) * vocab.EVENT_LEN))
    assert all(view.window(i)[1] % vocab.EVENT_LEN == 0 for i in range(len(view)))


def test_token_window_contents_are_the_stream_shifted_by_one(store):
    view = TokenWindows(store, "train", window_tokens=64, stride_tokens=32)
    for i in range(len(view)):
        file, start = view.window(i)
        stream = np.asarray(store.tokens(file), dtype=np.int64).reshape(-1)
        inputs, targets = view[i]
        assert inputs.dtype == targets.dtype == np.int64 and inputs.shape == targets.shape == (64,)
        expected = np.zeros(65, dtype=np.int64)
        piece = stream[start : start + 65]
        expected[: len(piece)] = piece
        np.testing.assert_array_equal(inputs, expected[:-1])
        np.testing.assert_array_equal(targets, expected[1:])
    first_inputs, _ = view[0]
    assert first_inputs[0] == vocab.BOS


def test_short_files_are_padded_not_dropped(store):
    longest = int(store.lengths().max())
    view = TokenWindows(store, "train", window_tokens=longest * vocab.EVENT_LEN + 16, stride_tokens=256)
    assert len(view) == len(store)  # one window per file
    for i in range(len(view)):
        file, start = view.window(i)
        inputs, targets = view[i]
        size = len(store.tokens(file)) * vocab.EVENT_LEN
        assert start == 0 and np.all(inputs[size:] == vocab.PAD) and np.all(targets[size - 1 :] == vocab.PAD)


def test_event_windows_target_the_next_event(store):
    view = EventWindows(store, "train", window_events=50, stride_events=20)
    coverage = covered_positions(view, 1)
    for file, positions in coverage.items():
        assert positions == set(range(len(store.tokens(file))))
    for i in range(len(view)):
        file, start = view.window(i)
        rows = np.asarray(store.tokens(file), dtype=np.int64)
        inputs, targets = view[i]
        assert inputs.shape == targets.shape == (50, vocab.EVENT_LEN)
        expected = np.zeros((51, vocab.EVENT_LEN), dtype=np.int64)
        expected[: len(rows[start : start + 51])] = rows[start : start + 51]
        np.testing.assert_array_equal(inputs, expected[:-1])
        np.testing.assert_array_equal(targets, expected[1:])


def test_random_offsets_change_per_epoch_and_stay_aligned(store):
    view = TokenWindows(store, "train", window_tokens=128, stride_tokens=64, random_offset=True, seed=7)
    starts = {}
    for epoch in (0, 1, 2):
        view.set_epoch(epoch)
        starts[epoch] = [view.window(i)[1] for i in range(len(view))]
        assert all(s % vocab.EVENT_LEN == 0 for s in starts[epoch])
    assert starts[1] != starts[2]
    again = TokenWindows(store, "train", window_tokens=128, stride_tokens=64, random_offset=True, seed=7)
    again.set_epoch(2)
    assert [again.window(i)[1] for i in range(len(again))] == starts[2]
    assert len(again) == len(view)  # the number of windows never depends on the epoch


def test_augmentation_is_seeded_per_epoch_and_item_and_train_only(store):
    plain = TokenWindows(store, "train", window_tokens=256, stride_tokens=128)
    view = TokenWindows(store, "train", window_tokens=256, stride_tokens=128, augment=True, seed=3)
    view.set_epoch(1)
    changed = [i for i in range(len(view)) if not np.array_equal(view[i][0], plain[i][0])]
    assert changed, "random shifts move pitches or velocities"
    np.testing.assert_array_equal(view[changed[0]][0], view[changed[0]][0])
    view.set_epoch(2)
    assert any(
        not np.array_equal(view[i][0], TokenWindows(store, "train", window_tokens=256, stride_tokens=128, augment=True, seed=3)[i][0])
        for i in changed
    )
    for split in ("val", "test"):
        with pytest.raises(ConfigError, match="training only"):
            TokenWindows(store, split, augment=True)


def test_bad_window_settings_are_config_errors(store):
    with pytest.raises(ConfigError, match="multiple of 8"):
        TokenWindows(store, "train", window_tokens=64, stride_tokens=12)
    with pytest.raises(ConfigError, match="longer than the window"):
        EventWindows(store, "train", window_events=8, stride_events=16)
    with pytest.raises(ConfigError, match="split 'dev'"):
        TokenWindows(store, "dev")


def test_empty_split_has_no_windows(store):
    assert len(TokenWindows(store, "val")) == 0


def test_views_pickle_small_and_work_in_dataloader_workers(store):
    view = TokenWindows(store, "train", window_tokens=64, stride_tokens=64)
    assert len(pickle.dumps(view)) < 5000
    dataset = WindowDataset(view)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=4, num_workers=1, sampler=RankSampler(len(dataset), rank=0, world_size=2, seed=1)
    )
    inputs, targets = next(iter(loader))
    assert inputs.dtype == targets.dtype == torch.long and inputs.shape == (4, 64)


def test_rank_indices_deal_every_window_once(store):
    n = 103
    shares = [rank_indices(n, rank=r, world_size=4, epoch=5, seed=1) for r in range(4)]
    assert len({len(s) for s in shares}) == 1
    assert set(np.concatenate(shares).tolist()) == set(range(n))
    assert not np.array_equal(rank_indices(n, rank=0, world_size=4, epoch=6, seed=1), shares[0])
    np.testing.assert_array_equal(rank_indices(n, rank=0, world_size=4, epoch=5, seed=1), shares[0])
