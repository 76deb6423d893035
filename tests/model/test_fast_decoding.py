"""The fast decoders (ONNX Runtime, torch.compile) against the eager reference, for every architecture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from midilm.model import ARCHS, make_decoder
from midilm.model.fast_decoding import STEP_DECODERS
from midilm.model.sampling import onnx_available
from midilm.model.steps import TorchStepRunner

needs_onnx = pytest.mark.skipif(not onnx_available(), reason="the [onnx] extra (onnx, onnxruntime) is not installed")

GROUPED = {"kv_heads": 2, "token_heads": 2, "token_kv_heads": 1}
"""skytnt with grouped-query attention in both stacks (SkyTNT's configs may set ``num_key_value_heads``)."""
MODELS = [pytest.param(arch, {}, id=arch) for arch in ARCHS] + [pytest.param("skytnt", GROUPED, id="skytnt-gqa")]
"""Every architecture at its defaults, and skytnt with fewer key/value heads than query heads."""


def onnx_decoder(model, batch: int, keep_events=None, weights: str = "full"):
    from midilm.model.sampling import onnx_twin

    twin = onnx_twin(model, weights)
    return STEP_DECODERS[model.step_family](
        twin.runner(1), twin.shapes, model.config.context_events, model.config.vocab_size, batch, keep_events=keep_events
    )


def plain_step_decoder(model, batch: int, keep_events=None, compiled: bool = False):
    runner = TorchStepRunner(model, compiled=compiled)
    return STEP_DECODERS[model.step_family](
        runner, runner.shapes, model.config.context_events, model.config.vocab_size, batch, keep_events=keep_events
    )


def assert_same_logits(fast, model, prompt: torch.Tensor, tokens: torch.Tensor, atol: float) -> None:
    """Push ``tokens [B, n]`` through ``fast`` and the eager cached decoder; logits agree at every step."""
    eager = make_decoder(model, prompt.size(0), keep_events=fast.keep_events)
    for decoder in (fast, eager):
        decoder.prefill(prompt)
    for step in range(tokens.size(1) + 1):
        np.testing.assert_allclose(fast.logits(), eager.logits().numpy(), rtol=0, atol=atol)
        if step < tokens.size(1):
            fast.push(tokens[:, step].numpy())
            eager.push(tokens[:, step])
    assert fast.window_start == eager.window_start > 0
    np.testing.assert_array_equal(fast.events(), eager.events())


@pytest.mark.parametrize(("arch", "changes"), MODELS)
@pytest.mark.parametrize("keep_events", [None, 1])
def test_step_graphs_as_torch_modules_equal_the_cached_decoder_across_slides(arch, changes, keep_events, make_model, make_events):
    model = make_model(arch, **changes).eval()
    tokens = make_events(2, 10).reshape(2, -1)[:, 3:]
    assert_same_logits(plain_step_decoder(model, 2, keep_events), model, make_events(2, 3), tokens, atol=1e-5)


@needs_onnx
@pytest.mark.parametrize(("arch", "changes"), MODELS)
def test_onnx_runtime_logits_equal_the_eager_decoder_within_1e_3(arch, changes, make_model, make_events):
    model = make_model(arch, **changes).eval()
    tokens = make_events(2, 10).reshape(2, -1)[:, 3:]
    assert_same_logits(onnx_decoder(model, 2), model, make_events(2, 3), tokens, atol=1e-3)


@needs_onnx
@pytest.mark.parametrize("arch", ["gpt", "hier"])
def test_onnx_attention_that_rotates_heads_itself_equals_the_eager_decoder(arch, make_model, make_events):
    """Heads of 16: the exported attention operator applies the rotary positions (rotated before it otherwise)."""
    import onnx

    from midilm.model.onnx_export import graph_bytes

    model = make_model(arch, n_heads=2).eval()
    cached = onnx.load_from_string(graph_bytes(model)["tokens" if arch == "gpt" else "events"])
    attention = [node for node in cached.graph.node if node.op_type == "GroupQueryAttention"]
    assert len(attention) == model.config.n_layers
    assert all({a.name: a.i for a in node.attribute}["do_rotary"] == 1 for node in attention)
    tokens = make_events(2, 10).reshape(2, -1)[:, 3:]
    assert_same_logits(onnx_decoder(model, 2), model, make_events(2, 3), tokens, atol=1e-3)


@needs_onnx
def test_onnx_grouped_query_attention_with_fewer_key_heads_equals_the_eager_decoder(make_model, make_events):
    """skytnt with 2 key/value heads for 4 query heads: the operator groups the heads as the reference does."""
    model = make_model("skytnt", kv_heads=2).eval()
    assert model.config.kv_heads < model.config.n_heads
    tokens = make_events(2, 10).reshape(2, -1)[:, 3:]
    assert_same_logits(onnx_decoder(model, 2), model, make_events(2, 3), tokens, atol=1e-3)


@needs_onnx
@pytest.mark.parametrize("arch", ["gpt", "hier"])
def test_onnx_int8_weights_stay_close_to_the_float_logits(arch, make_model, make_events):
    """8-bit weights in blocks of 32: the logits move a little (the torch int8 path moves them as much)."""
    model = make_model(arch).eval()
    tokens = make_events(1, 8).reshape(1, -1)[:, 3:]
    assert_same_logits(onnx_decoder(model, 1, weights="int8"), model, make_events(1, 3), tokens, atol=0.05)


@pytest.mark.slow
@pytest.mark.parametrize(("arch", "changes"), [("gpt", {}), ("hier", {}), ("skytnt", GROUPED)], ids=["gpt", "hier", "skytnt-gqa"])
def test_compiled_step_logits_equal_the_eager_decoder_within_1e_3(arch, changes, make_model, make_events):
    model = make_model(arch, **changes).eval()
    tokens = make_events(1, 8).reshape(1, -1)[:, 3:]
    assert_same_logits(plain_step_decoder(model, 1, compiled=True), model, make_events(1, 3), tokens, atol=1e-3)
