"""Likelihood over a split: every token predicted once, checked with a model whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from midilm import vocab
from midilm.data import TokenStore
from midilm.evaluate.likelihood import likelihood, split_seconds
from midilm.model.base import EventModel, FlatModel, MidilmModel


def uniform_logits(family: type[MidilmModel]) -> MidilmModel:
    """A model of the family (flat tokens or event rows) with equal logits for
    every token: exactly ln(V) nats for each predicted token."""

    class UniformLogits(family):
        @classmethod
        def flops_per_token(cls, config, window_events: int) -> float:
            return 0.0

        def __init__(self) -> None:
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(()))

        def forward(self, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
            shape = (*inputs.shape, vocab.VOCAB_SIZE)
            return torch.zeros(shape) + 0 * self.unused

        # an event model's decoding parts; evaluation reads forward alone
        def encode_events(self, events: torch.Tensor, cache: object = None) -> torch.Tensor:
            raise AssertionError("evaluation must not decode")

        _token_hidden = new_cache = encode_events

    return UniformLogits()


def expected_counts(store: TokenStore, split: str) -> tuple[int, int]:
    """(predicted tokens, predicted events) of a split: each file's tokens but the first (BOS), PAD not counted."""
    tokens = events = 0
    for i in store.split(split):
        rows = np.asarray(store.tokens(int(i)))
        tokens += int((rows[1:] != vocab.PAD).sum())
        events += len(rows) - 1
    return tokens, events


@pytest.mark.parametrize(
    ("family", "window_events"), [(FlatModel, 8), (FlatModel, 64), (FlatModel, 512), (EventModel, 7), (EventModel, 64)]
)
def test_uniform_logits_score_ln_vocab_on_every_token_once(tiny_store, family, window_events):
    store = TokenStore(tiny_store)
    result = likelihood(uniform_logits(family), store, "test", window_events, batch_size=4, device=torch.device("cpu"))
    tokens, events = expected_counts(store, "test")
    seconds = sum(r["seconds"] for r in store.records if r.get("split") == "test" and r["status"] == "ok")
    ln_v = math.log(vocab.VOCAB_SIZE)
    assert (result["tokens"], result["events"], result["files"]) == (tokens, events, 3)
    assert result["loss"] == pytest.approx(ln_v, rel=1e-6)
    assert result["nats_per_event"] == pytest.approx(ln_v * tokens / events, rel=1e-6)
    assert result["seconds"] == pytest.approx(seconds)
    assert result["bits_per_second"] == pytest.approx(ln_v * tokens / math.log(2) / seconds, rel=1e-6)
    assert result["loss_pitch"] == pytest.approx(ln_v, rel=1e-6)


def test_the_likelihood_pass_shows_its_progress(tiny_store, capfd):
    likelihood(uniform_logits(FlatModel), TokenStore(tiny_store), "test", 8, batch_size=4, device=torch.device("cpu"))
    shown = capfd.readouterr().err
    assert "likelihood of the test split (3 files, " in shown and "batch" in shown


def test_split_seconds_adds_the_manifest_durations(tiny_store):
    store = TokenStore(tiny_store)
    by_name = {r["path"].rsplit("/", 1)[-1]: r["seconds"] for r in store.records}
    assert split_seconds(store, "test") == pytest.approx(
        by_name["folk_essen_altdeu10_3.mid"] + by_name["m21_test10.mid"] + by_name["bach_bwv102.7.mid"]
    )
