"""``hf:OWNER/NAME[@REVISION]`` through huggingface_hub's cache, offline (no test touches the network)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import midilm
from midilm.errors import CheckpointError
from midilm.hub import hub_ids
from midilm.hub.sources import SKYTNT, resolve
from midilm.tokenizer.grammar import invalid_rows

from .conftest import COMMIT, hub_cache, teacher_forced


@pytest.fixture
def offline_cache(tmp_path: Path, skytnt_model: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The oracle model as ``skytnt/midi-model-tiny`` in a cache of its own, with the Hub out of reach."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    hub_cache(cache, "skytnt/midi-model-tiny", skytnt_model)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def test_a_cached_hub_id_loads_offline(offline_cache: Path, oracle: dict) -> None:
    source = resolve("hf:skytnt/midi-model-tiny")
    assert (source.kind, source.name) == (SKYTNT, "hf:skytnt/midi-model-tiny")
    assert source.path == offline_cache / "models--skytnt--midi-model-tiny" / "snapshots" / COMMIT
    model = midilm.load_model("hf:skytnt/midi-model-tiny")
    torch.testing.assert_close(teacher_forced(model, oracle["tokens"]), oracle["logits"], rtol=0, atol=1e-4)
    assert resolve(f"hf:skytnt/midi-model-tiny@{COMMIT}").path == source.path  # a revision by commit


def test_a_hub_id_that_is_not_cached_says_what_to_do_offline(offline_cache: Path) -> None:
    with pytest.raises(CheckpointError, match=r"hf:skytnt/other: not in the Hugging Face cache .* HF_HUB_OFFLINE is set: unset it"):
        resolve("hf:skytnt/other")


@pytest.mark.parametrize("text", ["hf:skytnt", "hf:/name", "hf:owner/name@", "hf:own er/name"])
def test_a_malformed_hub_id_is_refused(text: str) -> None:
    with pytest.raises(CheckpointError, match="not a hub id; write hf:OWNER/NAME"):
        hub_ids.parse_hub_id(text)


def test_peft_names_its_base_without_the_prefix(tmp_path: Path) -> None:
    assert str(hub_ids.from_peft_base("skytnt/midi-model-tv2o-medium")) == "hf:skytnt/midi-model-tv2o-medium"
    assert hub_ids.from_peft_base(str(tmp_path)) is None  # a path that exists is a path


def test_generate_from_a_hub_id_with_controls_and_a_prompt(tmp_path: Path, skytnt_model: Path, golden_dir: Path) -> None:
    """As a user runs it: a new process whose environment says where the cache is and that it is offline."""
    hub_cache(tmp_path / "hf-cache", "skytnt/midi-model-tiny", skytnt_model)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hf-cache"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    common = [
        sys.executable,
        "-m",
        "midilm",
        "generate",
        "--checkpoint",
        "hf:skytnt/midi-model-tiny",
        "--events",
        "12",
        "--min-events",
        "12",
        "--seconds",
        "0",  # an untrained model's events may span minutes
        "--seed",
        "0",
    ]
    runs = {
        "controls": ["--instruments", "piano,violin", "--drums", "standard", "--bpm", "96", "--time-signature", "3/4", "--key", "Dm"],
        "prompt": ["--prompt", str(golden_dir / "bach_bwv1.6.mid"), "--prompt-events", "10"],
    }
    for name, options in runs.items():
        result = subprocess.run([*common, *options, "--out", str(tmp_path / name)], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        tokens = np.load(tmp_path / name / "sample-00.npy")
        assert not invalid_rows(tokens).any() and len(tokens) >= 12 + 2
    prompt = np.load(tmp_path / "prompt" / "sample-00.npy")
    assert (prompt[:11] == midilm.tokenize(golden_dir / "bach_bwv1.6.mid").tokens[:11]).all()  # the prompt, kept verbatim
