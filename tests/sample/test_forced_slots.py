"""Slots the grammar forces (PAD past an event's parameters) cost no logits on event-level models,
and leaving them uncomputed changes nothing that is sampled."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from midilm.errors import TokenError
from midilm.model import build_model, make_decoder, preset_config
from midilm.sample import SamplingConfig, sample_events, start_rows
from midilm.sample.sampler import EventSampler


def tiny(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(preset_config(arch, "tiny")).eval()


def counting_refreshes(monkeypatch: pytest.MonkeyPatch, decoder_class: type) -> list[int]:
    calls: list[int] = []
    refresh = decoder_class._refresh

    def counted(self, new_window: bool):
        calls.append(self.slot)
        return refresh(self, new_window)

    monkeypatch.setattr(decoder_class, "_refresh", counted)
    return calls


@pytest.mark.parametrize(("arch", "decoder"), [("hier", "eager"), ("skytnt", "eager"), ("hier", "onnx"), ("gpt", "eager")])
def test_skipping_forced_slots_samples_the_same_events(arch: str, decoder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if decoder == "onnx":
        pytest.importorskip("onnxruntime")
    model = tiny(arch)
    config = SamplingConfig(num_samples=3, events=40, min_events=40, temperature=1.2, seed=7, decoder=decoder, seconds=0)
    skipping = sample_events(model, config, start_rows()).samples
    monkeypatch.setattr(EventSampler, "_rest_forced", staticmethod(lambda *args: [False] * 9))
    computing_all = sample_events(model, config, start_rows()).samples
    for a, b in zip(skipping, computing_all, strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_event_level_model_computes_no_logits_for_forced_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny("hier")
    calls = counting_refreshes(monkeypatch, model.cached_decoder)
    config = SamplingConfig(num_samples=1, events=30, min_events=30, seed=1, decoder="eager", seconds=0)
    result = sample_events(model, config, start_rows())
    rows = result.samples[0][len(start_rows()) :]
    chosen = int((rows[:, 1:] != 0).sum())  # parameter slots that held a value
    assert len(calls) - 1 == len(rows) + chosen  # prefill, then one per event (slot 0) and one per parameter slot
    assert len(calls) - 1 < 8 * len(rows)


def test_logits_are_refused_after_a_push_that_said_none_were_needed() -> None:
    decoder = make_decoder(tiny("hier"), 1)
    decoder.prefill(start_rows()[None].astype(np.int64))
    decoder.push(np.array([4]), logits_needed=False)
    with pytest.raises(TokenError, match="no logits were needed"):
        decoder.logits()


def test_a_flat_model_reads_every_token_whatever_the_sampler_needs() -> None:
    decoder = make_decoder(tiny("gpt"), 1)
    decoder.prefill(start_rows()[None].astype(np.int64))
    decoder.push(np.array([4]), logits_needed=False)
    assert decoder.logits().shape == (1, 3406)
