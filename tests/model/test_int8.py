"""Int8 sampling weights: next-token distributions stay close to float32, training weights untouched."""

from __future__ import annotations

import pytest
import torch

from midilm.model import build_model, make_decoder, preset_config
from midilm.model.int8 import Int8WeightLinear, for_sampling, with_int8_weights


@pytest.mark.parametrize("arch", ["seed", "gpt", "hier"])
def test_int8_log_probabilities_match_float32(arch: str) -> None:
    torch.manual_seed(0)
    model = build_model(preset_config(arch, "tiny")).eval()
    quantized = with_int8_weights(model)
    prompt = torch.randint(3, 3000, (2, 6, 8))
    prompt[:, 0] = torch.tensor([1, 0, 0, 0, 0, 0, 0, 0])
    full, fast = make_decoder(model, 2), make_decoder(quantized, 2)
    full.prefill(prompt)
    fast.prefill(prompt)
    for token in (3, 12, 140, 2205, 2330, 2400):
        torch.testing.assert_close(torch.log_softmax(fast.logits(), -1), torch.log_softmax(full.logits(), -1), atol=0.05, rtol=0)
        full.push(torch.full((2,), token))
        fast.push(torch.full((2,), token))
    assert any(isinstance(m, Int8WeightLinear) for m in quantized.modules())
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the original is untouched


def test_weights_choice() -> None:
    model = build_model(preset_config("gpt", "tiny"))
    assert any(isinstance(m, Int8WeightLinear) for m in for_sampling(model, "auto").modules())  # a CPU
    assert for_sampling(model, "full") is model
