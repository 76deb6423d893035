"""Small models and token data for the model tests (factory fixtures, since
test modules are imported without a package)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from midilm import vocab
from midilm.model import ModelConfig, build_model


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on a shared machine
    spinning worker threads can slow them down many times over."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def make_events(generator) -> Callable[..., torch.Tensor]:
    """``(batch, n_events) -> [batch, n_events, 8]``: a BOS row, then rows of
    arbitrary non-special ids (the models need no grammar)."""

    def make(batch: int, n_events: int) -> torch.Tensor:
        events = torch.randint(vocab.FIRST_EVENT_ID, vocab.VOCAB_SIZE, (batch, n_events, vocab.EVENT_LEN), generator=generator)
        events[:, 0] = vocab.PAD
        events[:, 0, 0] = vocab.BOS
        return events

    return make


def tiny_config(arch: str, **changes) -> ModelConfig:
    """Small enough for hundreds of steps a second; a context of 6 events for
    every arch, so that decoding tests slide their window."""
    sizes = {"d_model": 32, "n_heads": 4, "n_layers": 2, "context_events": 6, "dropout": 0.0}
    return ModelConfig(arch=arch, **{**sizes, **changes})


@pytest.fixture
def make_model() -> Callable[..., torch.nn.Module]:
    """``(arch, **config changes) -> model`` with fixed initial weights."""

    def make(arch: str, **changes) -> torch.nn.Module:
        torch.manual_seed(0)
        return build_model(tiny_config(arch, **changes))

    return make
