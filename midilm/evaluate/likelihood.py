"""How well a model predicts held-out music: nats per token and per event,
bits per second of music, and loss and accuracy per slot.

Windows are laid end to end (stride = window length), so every token of every
file of the split is predicted exactly once, except each file's first token,
which is given (BOS has no history); PAD targets are not counted. Bits per second
divide the total information (nats / ln 2) by the music's duration in seconds,
as recorded by the store for each file: a number comparable across tokenizer
settings and models whose tokens mean different lengths of music.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from midilm import vocab
from midilm.errors import ConfigError, StoreError


def split_seconds(store: Any, split: str) -> float:
    """Total duration in seconds of the split's files, as the store's manifest records them."""
    recorded = {int(r["index"]): r.get("seconds") for r in store.records if r.get("index") is not None}
    missing = [int(i) for i in store.split(split) if recorded.get(int(i)) is None]
    if missing:
        raise StoreError(
            f"{store.path}: the manifest gives no duration for {len(missing)} file(s) of the {split} split (first: index {missing[0]})"
        )
    return float(sum(recorded[int(i)] for i in store.split(split)))


class TiledWindows:
    """A window view (stride = window length) in which every target is predicted once.

    The store's views end each file with a window clamped to the file's end,
    which overlaps the window before it; here the targets of that overlap,
    already predicted by the earlier window, become PAD (which no metric counts).
    """

    def __init__(self, view: Any) -> None:
        self.view = view

    def __len__(self) -> int:
        return len(self.view)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        inputs, targets = self.view[i]
        start = self.view.window(i)[1]
        already_predicted = -start % self.view.window_positions
        if already_predicted:
            targets = targets.copy()
            targets[:already_predicted] = vocab.PAD
        return inputs, targets


def tiled_view(store: Any, split: str, model: torch.nn.Module, window_events: int) -> TiledWindows:
    """The model's windows of ``window_events`` events, laid end to end, that
    cover each file with every target counted once."""
    view = model.window_view(store, split, window_events, window_events)
    return TiledWindows(view)


def likelihood(model: torch.nn.Module, store: Any, split: str, window_events: int, batch_size: int, device: torch.device) -> dict[str, Any]:
    """Likelihood metrics of ``model`` over a whole split (see the module doc)."""
    from midilm.train.batches import eval_batches
    from midilm.train.metrics import evaluate_view

    files = len(store.split(split))
    if not files:
        raise ConfigError(f"{store.path}: the {split} split is empty; nothing to evaluate")
    from tqdm import tqdm

    view = tiled_view(store, split, model, window_events)
    batches = list(eval_batches(len(view), batch_size))
    desc = f"likelihood of the {split} split ({files} files, {len(view)} windows)"
    with tqdm(total=len(batches), unit="batch", desc=desc, dynamic_ncols=True, leave=False) as bar:
        result = evaluate_view(model, view, batches, device, on_batch=bar.update).result()
    seconds = split_seconds(store, split)
    total_nats = result["loss"] * result["tokens"]
    result.update(
        split=split,
        files=files,
        windows=len(view),
        window_events=window_events,
        seconds=seconds,
        bits_per_second=total_nats / math.log(2) / seconds if seconds > 0 else float("nan"),
    )
    return result
