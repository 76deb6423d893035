"""Damaged or hostile checkpoints (issue 15, rows 6 and 7): refused with a CheckpointError naming the file and
the field, before any model is built from a config the weights do not back."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import midilm.model
from midilm.cli import main
from midilm.errors import CheckpointError, MidilmError
from midilm.train import load_for_inference, resume_run
from midilm.train.checkpoint import CONFIG_KEY, META_FILE, STATE_FILE, WEIGHTS_FILE, read_state


@pytest.fixture
def checkpoint(tiny_gpt_run: Path, tmp_path: Path) -> Path:
    """A copy of a tiny gpt run's ``last`` checkpoint (weights, meta and training state)."""
    return Path(shutil.copytree(tiny_gpt_run / "last", tmp_path / "last"))


@pytest.fixture
def real_builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The architectures of every model built on a real device (builds on the meta device cost nothing and are not listed)."""
    built: list[str] = []
    original = midilm.model.build_model

    def recording(config):
        if torch.empty(0).device.type != "meta":
            built.append(config.arch)
        return original(config)

    monkeypatch.setattr(midilm.model, "build_model", recording)
    return built


def rewrite_config(folder: Path, change: Callable[[dict], object]) -> None:
    """Store ``change(config)`` as the weights file's run config (the tensors stay as they are)."""
    weights = folder / WEIGHTS_FILE
    with safe_open(str(weights), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    config = json.loads(metadata[CONFIG_KEY])
    metadata[CONFIG_KEY] = json.dumps(change(config))
    save_file(tensors, str(weights), metadata=metadata)


def model_change(**fields: object) -> Callable[[dict], dict]:
    def change(config: dict) -> dict:
        config["model"].update(fields)
        return config

    return change


HOSTILE_CONFIGS: dict[str, tuple[Callable[[dict], object], str]] = {
    # row 6: a config describing a model the weights do not back
    "d_model of a million": (model_change(d_model=1_000_000, n_heads=1), r"describes a model \(arch gpt, d_model 1000000.* more than"),
    "a billion layers": (model_change(n_layers=10**9), "n_layers 1000000000.* more than .* parameters"),
    "a context of 10^12 events": (model_change(context_events=10**12), "declares a context of 8,000,000,000,000 positions"),
    "another feed-forward size": (
        model_change(d_ff=64),
        r"do not fit the model .*: stack\.blocks\.0\.mlp\.down\.weight: \[64, 192\] in the file, \[64, 64\] in the model",
    ),
    "another architecture": (model_change(arch="hier"), "arch hier.* the config and the weights disagree"),
    # row 7: a config of the wrong shape or types
    "config is a JSON list": (lambda config: [config], "damaged run config: .*a run config is a JSON object, got list"),
    "d_model is a string": (model_change(d_model="abc"), "d_model: expected an integer, got 'abc'"),
    "vocab is a list": (lambda config: {**config, "vocab": [3406]}, "field vocab: expected a JSON object"),
    "dropout out of range": (model_change(dropout=7), "dropout"),
}


@pytest.mark.parametrize("name", list(HOSTILE_CONFIGS))
def test_a_hostile_run_config_is_refused_before_any_model_is_built(name, checkpoint, real_builds):
    change, message = HOSTILE_CONFIGS[name]
    rewrite_config(checkpoint, change)
    with pytest.raises(CheckpointError, match=message) as raised:
        load_for_inference(checkpoint)
    assert str(checkpoint / WEIGHTS_FILE) in str(raised.value)
    assert real_builds == []


def test_an_undamaged_checkpoint_still_loads(checkpoint, real_builds):
    loaded = load_for_inference(checkpoint)
    assert real_builds == ["gpt"] and loaded.meta["step"] == 2


META_DAMAGE: dict[str, tuple[bytes, str]] = {
    "not JSON": (b"{step: 2", "checkpoint metadata is not valid JSON"),
    "binary": (b"\x00\xff\xfe\x80", "checkpoint metadata is not valid JSON"),
    "a list": (b"[1, 2]", "expected a JSON object, got list"),
    "step is a string": (b'{"step": "two"}', "field step: expected a non-negative integer, got 'two'"),
    "empty": (b"", "checkpoint metadata is not valid JSON"),
}


@pytest.mark.parametrize("name", list(META_DAMAGE))
def test_damaged_meta_json_is_a_checkpoint_error_naming_it(name, checkpoint):
    data, message = META_DAMAGE[name]
    (checkpoint / META_FILE).write_bytes(data)
    with pytest.raises(CheckpointError, match=message) as raised:
        load_for_inference(checkpoint)
    assert str(checkpoint / META_FILE) in str(raised.value)


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (b"PK\x03\x04 not a zip", "cannot read training state"),
        ([1, 2], "expected a JSON object, got list"),
        ({"optimizer": {}}, r"lacks field\(s\) schedule"),
    ],
)
def test_a_damaged_training_state_is_a_checkpoint_error(state, message, checkpoint):
    if isinstance(state, bytes):
        (checkpoint / STATE_FILE).write_bytes(state)
    else:
        torch.save(state, checkpoint / STATE_FILE)
    with pytest.raises(CheckpointError, match=message):
        read_state(checkpoint)


def test_resume_checks_the_last_weights_against_config_json_before_building(tiny_gpt_run, tmp_path, real_builds):
    run = Path(shutil.copytree(tiny_gpt_run, tmp_path / "run"))
    config = json.loads((run / "config.json").read_text())
    config["model"]["d_model"] = 1 << 20
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="its run config describes a model"):
        resume_run(run, max_steps=3)
    assert real_builds == []


def test_generate_from_a_hostile_checkpoint_exits_2_with_the_reason(checkpoint, tmp_path, capsys):
    rewrite_config(checkpoint, model_change(d_model=1_000_000, n_heads=1))
    assert main(["generate", "--checkpoint", str(checkpoint), "--events", "8", "--out", str(tmp_path / "samples")]) == 2
    assert "describes a model" in capsys.readouterr().err


def test_every_failure_is_a_midilm_error():
    assert issubclass(CheckpointError, MidilmError)
