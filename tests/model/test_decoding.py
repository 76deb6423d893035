from __future__ import annotations

import numpy as np
import pytest
import torch

from midilm import vocab
from midilm.errors import ConfigError, TokenError
from midilm.model import ARCHS, make_decoder

V = vocab.VOCAB_SIZE


def run_in_lockstep(decoders, prompt: torch.Tensor, tokens: torch.Tensor) -> list[list[torch.Tensor]]:
    """Prefill every decoder, push the same ``tokens [B, n]`` into each, and
    return each decoder's logits before every push and after the last."""
    seen: list[list[torch.Tensor]] = [[] for _ in decoders]
    for decoder, log in zip(decoders, seen, strict=True):
        decoder.prefill(prompt)
        log.append(decoder.logits())
        for step in range(tokens.size(1)):
            decoder.push(tokens[:, step])
            log.append(decoder.logits())
    return seen


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("keep_events", [None, 1])
def test_cached_logits_equal_reference_across_slides(arch, keep_events, make_model, make_events):
    model = make_model(arch)
    prompt = make_events(2, 3)
    tokens = make_events(2, 10).reshape(2, -1)[:, 3:]  # 9+ events: several slides of a 6-event context
    reference = make_decoder(model, 2, cache=False, keep_events=keep_events)
    cached = make_decoder(model, 2, keep_events=keep_events)
    expected, actual = run_in_lockstep([reference, cached], prompt, tokens)
    for want, got in zip(expected, actual, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
    assert cached.window_start == reference.window_start > 0
    np.testing.assert_array_equal(cached.events(), reference.events())


@pytest.mark.parametrize("arch", ARCHS)
def test_reference_decoder_sees_the_documented_window(arch, make_model, make_events):
    model = make_model(arch)
    decoder = make_decoder(model, 1, cache=False, keep_events=2)
    history = make_events(1, 9)
    decoder.prefill(history[:, :6])
    for token in history[0, 6:].reshape(-1)[:19]:  # two whole events and 3 tokens of a third
        decoder.push(token.view(1))
    # the window overflowed on the first token of the 7th event (flat: 49 > 48
    # tokens) or on completing it (event-level models: 7 > 6 events), keeping 2 whole events
    event_level = model.positions_per_event == 1
    kept_from = 5 if event_level else 4
    assert decoder.window_start == kept_from * 8
    assert decoder.slot == 3
    with torch.no_grad():
        if event_level:
            state = model.encode_events(history[:, kept_from:8])[:, -1]
            expected = model.decode_tokens(state, history[:, 8, :3])[:, -1]
        else:
            expected = model(history.reshape(1, -1)[:, kept_from * 8 : 8 * 8 + 3])[:, -1]
    torch.testing.assert_close(decoder.logits(), expected)


@pytest.mark.parametrize("arch", ARCHS)
def test_batch_rows_are_independent(arch, make_model, make_events):
    model = make_model(arch)
    prompt = make_events(3, 2)
    tokens = make_events(3, 5).reshape(3, -1)[:, 8:]
    (batched,) = run_in_lockstep([make_decoder(model, 3)], prompt, tokens)
    for row in range(3):
        (alone,) = run_in_lockstep([make_decoder(model, 1)], prompt[row : row + 1], tokens[row : row + 1])
        for got, want in zip(batched, alone, strict=True):
            torch.testing.assert_close(got[row : row + 1], want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_a_prompt_longer_than_the_context_keeps_its_last_events(arch, make_model, make_events):
    model = make_model(arch)
    prompt = make_events(1, 20)
    tokens = make_events(1, 2).reshape(1, -1)
    reference, cached = make_decoder(model, 1, cache=False), make_decoder(model, 1)
    for decoder in (reference, cached):
        decoder.prefill(prompt)
        assert decoder.window_start == (20 - decoder.keep_events) * 8
    expected, actual = run_in_lockstep([reference, cached], prompt, tokens)
    for want, got in zip(expected, actual, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
    assert torch.equal(torch.from_numpy(cached.events()[:, :20]), prompt)


def test_history_keeps_the_prompt_and_every_token_pushed(make_model, make_events):
    decoder = make_decoder(make_model("gpt"), 2)
    prompt = make_events(2, 4)
    tokens = make_events(2, 140).reshape(2, -1)[:, 8:-5]  # past the initial 1024-token buffer
    decoder.prefill(prompt)
    for step in range(tokens.size(1)):
        decoder.push(tokens[:, step])
    history = torch.from_numpy(decoder.events())
    assert history.shape == (2, 4 + 139, 8)
    assert torch.equal(history[:, :4], prompt)
    assert torch.equal(history.reshape(2, -1)[:, 32 : 32 + tokens.size(1)], tokens)
    assert (history[:, -1, 3:] == vocab.PAD).all()
    assert decoder.slot == 3 and decoder.n_tokens == 32 + tokens.size(1)


@pytest.mark.parametrize("arch", ARCHS)
def test_a_decoder_can_start_again_from_a_new_prompt(arch, make_model, make_events):
    model = make_model(arch)
    used = make_decoder(model, 1)
    run_in_lockstep([used], make_events(1, 4), make_events(1, 6).reshape(1, -1))  # slides, fills the cache
    prompt, tokens = make_events(1, 2), make_events(1, 2).reshape(1, -1)
    again, fresh = run_in_lockstep([used, make_decoder(model, 1)], prompt, tokens)
    for got, want in zip(again, fresh, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    assert torch.equal(torch.from_numpy(used.events()), torch.cat([prompt, tokens.view(1, -1, 8)], dim=1))


@pytest.mark.parametrize("arch", ARCHS)
def test_decoding_in_bfloat16_gives_float_logits(arch, make_model, make_events):
    model = make_model(arch).to(torch.bfloat16)
    decoder = make_decoder(model, 2)
    decoder.prefill(make_events(2, 2))
    decoder.push(torch.tensor([vocab.EVENT_ID["note"]] * 2))
    logits = decoder.logits()
    assert logits.shape == (2, V) and logits.dtype == torch.float32 and not logits.requires_grad
    assert not model.training


def test_bad_calls_raise_clear_errors(make_model, make_events):
    model = make_model("gpt")
    decoder = make_decoder(model, 2)
    with pytest.raises(TokenError, match="prefill"):
        decoder.push(torch.tensor([3, 3]))
    with pytest.raises(TokenError, match="prefill"):
        decoder.logits()
    with pytest.raises(TokenError, match=r"shape \[2, N >= 1, 8\], got \(1, 3, 8\)"):
        decoder.prefill(make_events(1, 3))
    too_big = make_events(2, 2)
    too_big[0, 1, 2] = V
    with pytest.raises(TokenError, match="token ids must be in"):
        decoder.prefill(too_big)
    decoder.prefill(make_events(2, 2))
    with pytest.raises(TokenError, match=r"shape \[2\], got \(2, 1\)"):
        decoder.push(torch.tensor([[3], [3]]))
    with pytest.raises(ConfigError, match="keep_events: must be in 1..5"):
        make_decoder(model, 1, keep_events=6)
    with pytest.raises(ConfigError, match="batch_size"):
        make_decoder(model, 0)
