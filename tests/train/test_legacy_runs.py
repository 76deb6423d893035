"""Runs and checkpoints written before lengths were counted in events still load.

``tests/data/legacy`` holds tiny runs written by midilm 0.1.0 as it was before the
change (model ``max_seq_len`` and train ``seq_len``/``stride`` in positions: tokens
for seed and gpt, events for hier), with the logits those models gave then.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from midilm import vocab
from midilm.cli import main
from midilm.errors import ConfigError
from midilm.train import RunConfig, load_for_inference
from midilm.train.checkpoint import read_run_config

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy"
EXPECTED = {"seed": (12, 12, 6), "gpt": (12, 12, 6), "hier": (24, 24, 12)}
"""arch -> (context_events, window_events, stride_events) after the upgrade: 96 tokens are 12 events."""


@pytest.mark.parametrize("arch", sorted(EXPECTED))
def test_a_legacy_run_config_is_upgraded_on_read(arch: str) -> None:
    written = json.loads((LEGACY / arch / "config.json").read_text())
    assert "max_seq_len" in written["model"] and "seq_len" in written["train"]  # today's files keep the old form
    run = RunConfig.load(LEGACY / arch / "config.json")
    assert (run.model.context_events, run.train.window_events, run.train.stride_events) == EXPECTED[arch]
    assert read_run_config(LEGACY / arch / "best" / "model.safetensors") == run  # the copy in the weights file too


@pytest.mark.parametrize("arch", sorted(EXPECTED))
def test_a_legacy_checkpoint_gives_the_logits_it_gave_then(arch: str) -> None:
    expected = np.load(LEGACY / "expected_logits.npz")
    model = load_for_inference(LEGACY / arch).model
    tokens = torch.as_tensor(expected["tokens"])[None]  # (1, 12, 8)
    with torch.no_grad():
        inputs, targets = model.training_pair(tokens)
        logits = model(inputs, targets).reshape(-1, vocab.VOCAB_SIZE)[:, :40]
    then = expected[arch][: len(logits)]  # flat models were given one more token then; the model is causal
    assert len(then) == len(logits) >= 88
    np.testing.assert_allclose(logits.numpy(), then, atol=1e-5)


def test_a_legacy_config_file_for_the_cli_is_upgraded(golden_store: Path, tmp_path: Path) -> None:
    config = tmp_path / "old.json"
    config.write_text(json.dumps({"model": {"arch": "gpt", "preset": "tiny", "max_seq_len": 128}, "train": {"seq_len": 64, "stride": 32}}))
    out = tmp_path / "run"
    args = ["train", "--data", str(golden_store), "--out", str(out), "--config", str(config), "--max-steps", "1", "--batch-size", "2"]
    assert main(args) == 0
    saved = json.loads((out / "config.json").read_text())
    assert (saved["model"]["context_events"], saved["train"]["window_events"], saved["train"]["stride_events"]) == (16, 8, 4)


def test_a_position_count_that_is_not_whole_events_is_refused(tmp_path: Path) -> None:
    data = json.loads((LEGACY / "gpt" / "config.json").read_text())
    data["model"]["max_seq_len"] = 100
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="max_seq_len: 100 positions are not a whole number of 8-token events"):
        RunConfig.load(tmp_path / "config.json")
