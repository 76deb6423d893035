"""Float16 decoding weights: logits stay close to the float32 model's, training weights untouched."""

from __future__ import annotations

import pytest
import torch

from midilm.model import build_model, make_decoder, preset_config
from midilm.model.halfweights import HalfWeightLinear, for_sampling, with_half_weights


@pytest.mark.parametrize("arch", ["seed", "gpt", "hier"])
def test_half_weight_logits_match_float32(arch: str) -> None:
    torch.manual_seed(0)
    model = build_model(preset_config(arch, "tiny")).eval()
    half = with_half_weights(model)
    prompt = torch.randint(3, 3000, (2, 6, 8))
    prompt[:, 0] = torch.tensor([1, 0, 0, 0, 0, 0, 0, 0])
    full, fast = make_decoder(model, 2), make_decoder(half, 2)
    full.prefill(prompt)
    fast.prefill(prompt)
    for token in (3, 12, 140, 2205, 2330, 2400):
        torch.testing.assert_close(fast.logits(), full.logits(), atol=2e-2, rtol=0)
        full.push(torch.full((2,), token))
        fast.push(torch.full((2,), token))
    assert any(isinstance(m, HalfWeightLinear) for m in half.modules())
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the original is untouched


def test_sampling_uses_half_weights_for_flat_models_on_cpu_only() -> None:
    gpt, hier = (build_model(preset_config(arch, "tiny")) for arch in ("gpt", "hier"))
    assert any(isinstance(m, HalfWeightLinear) for m in for_sampling(gpt).modules())
    assert for_sampling(hier) is hier
