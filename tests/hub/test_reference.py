"""SkyTNT's own code (transformers and peft) loads what midilm writes: a LoRA adapter trained by midilm,
and a model exported in SkyTNT's layout. Runs only where the reference is installed outside the repository:

    MIDILM_SKYTNT_CODE=/path/to/SkyTNT/midi-model MIDILM_SKYTNT_PYTHON=/path/to/venv/bin/python pytest tests/hub/test_reference.py

(the Python needs torch, transformers and peft; they are never imported into midilm).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

import midilm
from midilm.cli import main

from .conftest import teacher_forced

CODE, PYTHON = os.environ.get("MIDILM_SKYTNT_CODE"), os.environ.get("MIDILM_SKYTNT_PYTHON")
pytestmark = pytest.mark.skipif(not (CODE and PYTHON), reason="SkyTNT's code and a Python with transformers and peft are not given")

REFERENCE = """
import sys
sys.path.insert(0, sys.argv[1])
import torch
from safetensors.torch import load_file
from midi_model import MIDIModel

base, adapter, cases, out = sys.argv[2:6]
model = MIDIModel.from_pretrained(base).eval()
if adapter:
    model = model.load_merge_lora(adapter).eval()
tokens = load_file(cases)["tokens"]
with torch.no_grad():  # SkyTNT's validation_step
    hidden = model.forward(tokens[:, :-1])
    targets = tokens[:, 1:]
    logits = model.forward_token(hidden.reshape(-1, hidden.shape[-1]), targets.reshape(-1, 8)[:, :-1])
torch.save(logits.view(*targets.shape, -1), out)
"""


def reference_logits(tmp_path: Path, base: Path, adapter: Path | None) -> torch.Tensor:
    out = tmp_path / "reference.pt"
    cases = Path(__file__).resolve().parents[1] / "data" / "skytnt" / "cases.safetensors"
    command = [PYTHON, "-c", REFERENCE, CODE, str(base), str(adapter or ""), str(cases), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return torch.load(out)


def test_peft_applies_a_midilm_adapter_as_midilm_does(chorale_store: Path, skytnt_model: Path, tmp_path: Path, oracle: dict) -> None:
    run = tmp_path / "lora"
    args = ["--lora", "4", "--window-events", "16", "--batch-size", "4", "--max-steps", "4", "--eval-batches", "1"]
    assert main(["train", "--data", str(chorale_store), "--init", str(skytnt_model), "--out", str(run), *args]) == 0
    expected = teacher_forced(midilm.load_model(run), oracle["tokens"])
    assert (expected - oracle["logits"]).abs().max() > 1e-3  # the adapter changed the model
    torch.testing.assert_close(reference_logits(tmp_path, skytnt_model, run / "best"), expected, rtol=0, atol=1e-4)


def test_skytnts_code_loads_a_model_midilm_exported_in_its_layout(
    tiny_gpt_run: Path, skytnt_model: Path, tmp_path: Path, oracle: dict
) -> None:
    assert main(["export", str(skytnt_model), "--format", "skytnt", "--dtype", "float32", "--out", str(tmp_path / "sky")]) == 0
    torch.testing.assert_close(reference_logits(tmp_path, tmp_path / "sky", None), oracle["logits"], rtol=0, atol=1e-4)
