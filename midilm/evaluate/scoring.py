"""How likely a model finds a known continuation under the sampler's own rules.

:func:`stream_logits` runs the model teacher-forced over a whole token stream
(windows laid end to end, each starting fresh); :func:`replay` then walks the
stream as the sampler would, with the same grammar and constraints: rows the
constraints force cost nothing, and every token the sampler would draw costs
``-log p`` under its masks (and logit biases), temperature 1, no top-k or top-p.
So the nats of a part are those of the procedure that would write it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from midilm import vocab
from midilm.sample.arrays import NumpyOps
from midilm.sample.grammar import GrammarMask


@torch.inference_mode()
def stream_logits(model: torch.nn.Module, rows: np.ndarray, window_events: int) -> torch.Tensor:
    """Float logits ``[n_rows * 8, V]``: entry ``p`` predicts flat token ``p`` of the stream
    from the tokens before it in its window (entry 0, the BOS token, is not predicted)."""
    model.eval()
    events = torch.as_tensor(np.asarray(rows, dtype=np.int64))
    n = len(events)
    out = torch.zeros(n * vocab.EVENT_LEN, model.config.vocab_size)
    flat = model.positions_per_event == vocab.EVENT_LEN
    for first in range(0, max(n - 1, 1), window_events):
        window = events[first : first + window_events + 1]
        if len(window) < 2:
            break
        inputs, targets = model.training_pair(window.unsqueeze(0))
        logits = model(inputs, targets).float().reshape(-1, model.config.vocab_size)
        start = first * vocab.EVENT_LEN + (1 if flat else vocab.EVENT_LEN)
        out[start : start + len(logits)] = logits
    return out


@dataclass
class Replay:
    """What a replay measured: nats of every drawn token, and how many rows were drawn."""

    nats: float
    drawn_rows: int
    impossible: int
    """drawn tokens the masks forbid (the stream breaks a rule of the procedure): their nats are not counted"""


def replay(rows: np.ndarray, start_rows: int, logits: torch.Tensor, constraints: list, vocab_size: int) -> Replay:
    """Walk ``rows`` from row ``start_rows`` (the rows before it are the prompt the
    constraints were built with) as a batch of one and sum ``-log p`` of every token
    the sampler would draw. Rows the constraints force cost nothing and must match the stream."""
    grammar = GrammarMask(NumpyOps(), vocab_size)
    finished = np.zeros(1, dtype=bool)
    nats, drawn, impossible = 0.0, 0, 0
    for i in range(start_rows, len(rows)):
        actual = np.asarray(rows[i], dtype=np.int64)[None, :]
        forced = _forced(constraints)
        if forced is not None:
            if not np.array_equal(forced, rows[i]):
                raise AssertionError(f"row {i}: the procedure forces {forced.tolist()}, the stream holds {rows[i].tolist()}")
        else:
            drawn += 1
            event_index = np.zeros(1, dtype=np.int64)
            for slot in range(vocab.EVENT_LEN):
                if slot and bool(grammar.forced(slot, event_index, finished)[0]):
                    continue
                raw = logits[i * vocab.EVENT_LEN + slot].unsqueeze(0).numpy()
                scores = raw + grammar.for_slot(slot, event_index, True, finished)
                for constraint in constraints:
                    mask = constraint.slot_mask(slot, actual, event_index)
                    bias = constraint.logit_bias(slot, actual, event_index, raw) if hasattr(constraint, "logit_bias") else None
                    scores = scores + (0 if mask is None else mask) + (0 if bias is None else bias)
                logp = float(torch.log_softmax(torch.from_numpy(scores[0].astype(np.float64)), dim=-1)[actual[0, slot]])
                if slot == 0:
                    event_index = np.clip(actual[:, 0] - vocab.FIRST_EVENT_ID, 0, len(vocab.EVENT_NAMES) - 1)
                if math.isinf(logp):
                    impossible += 1
                else:
                    nats -= logp
        for constraint in constraints:
            constraint.observe(rows[i : i + 1], np.ones(1, dtype=bool))
    return Replay(nats, drawn, impossible)


def _forced(constraints: list) -> np.ndarray | None:
    """The row the constraints force at this step (the last that asks wins, as in the sampler)."""
    row = None
    for constraint in constraints:
        asked = constraint.forced_rows()
        if asked is not None and asked[0][0]:
            row = np.asarray(asked[1][0])
    return row
