from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from midilm import vocab
from midilm.errors import ConfigError
from midilm.model import ARCHS, count_parameters

V = vocab.VOCAB_SIZE


@pytest.mark.parametrize("arch", ARCHS)
def test_logits_shape_and_context(arch, make_model, make_events):
    model = make_model(arch)
    inputs, targets = model.training_pair(make_events(2, 5))
    logits = model(inputs, targets)
    assert logits.shape == (*targets.shape, V)
    assert model.target_slots(targets).shape == targets.shape
    assert model.config.context_events == 6
    assert model.context_positions == 6 * model.positions_per_event


@pytest.mark.parametrize("arch", ARCHS)
def test_loss_falls_when_fitting_one_batch(arch, make_model, make_events):
    model = make_model(arch, dropout=0.1).train()
    inputs, targets = model.training_pair(make_events(4, 6))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    losses = []
    for _ in range(25):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(inputs, targets).reshape(-1, V), targets.reshape(-1), ignore_index=vocab.PAD)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize("arch", ["seed", "gpt"])
def test_flat_models_are_causal(arch, make_model, make_events):
    model = make_model(arch).eval()
    tokens = make_events(1, 5).reshape(1, -1)
    changed = tokens.clone()
    changed[:, 20:] = vocab.PAD
    with torch.no_grad():
        before, after = model(tokens), model(changed)
    torch.testing.assert_close(before[:, :20], after[:, :20])
    assert not torch.allclose(before[:, 20:], after[:, 20:])


def test_hier_logits_see_only_the_past_and_the_events_earlier_tokens(make_model, make_events):
    model = make_model("hier").eval()
    inputs, targets = model.training_pair(make_events(1, 5))
    n, j = 1, 3
    with torch.no_grad():
        reference = model(inputs, targets)[0, n, j]
        later = inputs.clone(), targets.clone()
        later[0][:, n + 1 :] = vocab.FIRST_EVENT_ID
        later[1][:, n, j:] = vocab.FIRST_EVENT_ID
        later[1][:, n + 1 :] = vocab.FIRST_EVENT_ID
        torch.testing.assert_close(model(*later)[0, n, j], reference)
        earlier_token = targets.clone()
        earlier_token[:, n, j - 1] = vocab.FIRST_EVENT_ID
        earlier_event = inputs.clone()
        earlier_event[:, n] = vocab.FIRST_EVENT_ID
        assert not torch.allclose(model(inputs, earlier_token)[0, n, j], reference)
        assert not torch.allclose(model(earlier_event, targets)[0, n, j], reference)


def test_hier_needs_targets(make_model, make_events):
    with pytest.raises(ConfigError, match="needs targets"):
        make_model("hier")(make_events(1, 3))


def test_gpt_embeds_each_tokens_slot_within_its_event(make_model, make_events):
    model = make_model("gpt").eval()
    seen = []
    model.slot_embed.register_forward_hook(lambda module, args, output: seen.append(args[0].tolist()))
    tokens = make_events(1, 3).reshape(1, -1)[:, :21]
    cache = model.new_cache(1, torch.device("cpu"), torch.float32)
    with torch.no_grad():
        model(tokens)
        model.next_logits(tokens[:, :13], cache)
        model.next_logits(tokens[:, 13:14], cache)
    assert seen == [[i % 8 for i in range(21)], [i % 8 for i in range(13)], [13 % 8]]


@pytest.mark.parametrize("arch", ["gpt", "hier"])
def test_embeddings_are_tied_and_counted_once(arch, make_model):
    model = make_model(arch)
    embedding = model.token_embed.weight
    assert model.lm_head.weight is embedding
    assert count_parameters(model) == sum(p.numel() for p in set(model.parameters()))


@pytest.mark.parametrize("arch", ARCHS)
def test_bf16_autocast_trains(arch, make_model, make_events):
    model = make_model(arch).train()
    inputs, targets = model.training_pair(make_events(2, 4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(inputs, targets)
        loss = F.cross_entropy(logits.reshape(-1, V).float(), targets.reshape(-1), ignore_index=vocab.PAD)
    loss.backward()
    assert logits.dtype == torch.bfloat16
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
