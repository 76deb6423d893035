from __future__ import annotations

import pytest
import torch


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["gpt", "hier"])
def test_forward_compiles_as_one_graph(arch, make_model, make_events):
    model = make_model(arch).eval()
    events = make_events(2, 5)
    inputs, targets = (events[:, :-1], events[:, 1:]) if arch == "hier" else (events.reshape(2, -1)[:, :32], None)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    with torch.no_grad():
        torch.testing.assert_close(compiled(inputs, targets), model(inputs, targets))
