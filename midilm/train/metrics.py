"""Loss and evaluation metrics over event-structured targets.

Every target token has a slot (0 = event type, then the event's parameters),
which the model's architecture gives (``model.target_slots``). Metrics are accumulated as sums (so they can be
reduced over processes and batches exactly) and turned into means at the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from midilm import vocab
from midilm.runtime import autocast

N_SLOTS = vocab.EVENT_LEN


def summed_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Total cross-entropy (nats) over non-PAD targets, in float32."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=vocab.PAD, reduction="sum")


def count_targets(targets: torch.Tensor) -> torch.Tensor:
    return (targets != vocab.PAD).sum()


class MetricSums:
    """Running sums for an evaluation: nats, tokens and events, and per slot
    nats, tokens and correct top-1 predictions."""

    def __init__(self, device: torch.device) -> None:
        # rows: 0 nats, 1 tokens, 2 correct; columns: slots; plus one column for events
        self.sums = torch.zeros(3, N_SLOTS, dtype=torch.float64, device=device)

    def add(self, logits: torch.Tensor, targets: torch.Tensor, slots: torch.Tensor) -> None:
        flat_logits = logits.reshape(-1, logits.shape[-1]).float()
        flat_targets = targets.reshape(-1)
        keep = flat_targets != vocab.PAD
        nats = F.cross_entropy(flat_logits[keep], flat_targets[keep], reduction="none").double()
        correct = (flat_logits[keep].argmax(-1) == flat_targets[keep]).double()
        slot = slots.reshape(-1)[keep]
        self.sums[0].index_add_(0, slot, nats)
        self.sums[1].index_add_(0, slot, torch.ones_like(nats))
        self.sums[2].index_add_(0, slot, correct)

    def result(self) -> dict[str, float]:
        """Means: loss (nats per token), perplexity, nats per event (events =
        targets in slot 0), and accuracy and loss per slot."""
        nats, tokens, correct = (row.cpu().tolist() for row in self.sums)
        total_tokens = sum(tokens)
        loss = sum(nats) / total_tokens if total_tokens else float("nan")
        out = {
            "loss": loss,
            "ppl": math.exp(loss) if loss < 50 else float("inf"),
            "nats_per_event": sum(nats) / tokens[0] if tokens[0] else float("nan"),
            "tokens": int(total_tokens),
            "events": int(tokens[0]),
        }
        for s, name in enumerate(vocab.SLOT_NAMES):
            if tokens[s]:
                out[f"acc_{name}"] = correct[s] / tokens[s]
                out[f"loss_{name}"] = nats[s] / tokens[s]
        return out


@torch.no_grad()
def evaluate_view(
    model: torch.nn.Module,
    view: Sequence[Any],
    batches: Iterable[list[int]],
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    num_workers: int = 0,
    on_batch: Callable[[], Any] | None = None,
) -> MetricSums:
    """Metric sums of ``model`` over the given batches of a window view
    (the caller reduces them over processes if it runs several);
    ``on_batch()`` after each batch (progress bars)."""
    was_training = model.training
    model.eval()
    sums = MetricSums(device)
    # a loader of its own generator: evaluating must not draw from the global RNG that dropout uses
    loader = DataLoader(view, batch_sampler=list(batches), num_workers=num_workers, generator=torch.Generator().manual_seed(0))
    for inputs, targets in loader:
        inputs, targets = inputs.to(device), targets.to(device)
        with autocast(device, amp_dtype):
            logits = model(inputs, targets)
        sums.add(logits, targets, model.target_slots(targets))
        if on_batch is not None:
            on_batch()
    model.train(was_training)
    return sums
