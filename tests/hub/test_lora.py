"""LoRA fine-tuning: adapters only in the checkpoints (peft's format), exact resume after SIGKILL,
the base checked by content, adapters folded in by generate/evaluate/export."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import midilm
from midilm.cli import main
from midilm.errors import CheckpointError, ConfigError
from midilm.hub.files import file_sha256
from midilm.model.sampling import onnx_available
from midilm.train import load_for_inference

from .conftest import teacher_forced

LORA = ["--lora", "4", "--window-events", "16", "--stride-events", "8", "--batch-size", "4", "--eval-batches", "2", "--log-every", "1"]


def lora_run(store: Path, base: Path, out: Path, *extra: str) -> Path:
    assert main(["train", "--data", str(store), "--init", str(base), "--out", str(out), *LORA, *extra]) == 0
    return out


@pytest.fixture(scope="module")
def trained(chorale_store: Path, skytnt_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA run of rank 4 on the oracle's SkyTNT model, 6 steps on six chorales."""
    return lora_run(chorale_store, skytnt_model, tmp_path_factory.mktemp("lora") / "run", "--max-steps", "6", "--eval-every", "3")


def test_a_lora_run_keeps_only_the_adapter_in_peft_format(trained: Path, skytnt_model: Path) -> None:
    config = json.loads((trained / "config.json").read_text())
    assert config["init"] == str(skytnt_model.resolve()) and config["init_sha256"] == file_sha256(skytnt_model / "model.safetensors")
    assert (config["train"]["lora"], config["train"]["lora_alpha"]) == (4, 8.0)  # alpha defaults to twice the rank
    for name in ("best", "last"):
        files = {p.name for p in (trained / name).iterdir()}
        assert "model.safetensors" not in files and {"adapter_config.json", "adapter_model.safetensors"} <= files
    adapter = load_file(trained / "last" / "adapter_model.safetensors")
    base = load_file(skytnt_model / "model.safetensors")
    assert all(key.endswith((".lora_A.weight", ".lora_B.weight")) for key in adapter)
    assert {key.rsplit(".lora_", 1)[0] + ".weight" for key in adapter} <= set(base)  # keys name the base's layers, as peft does
    layers = {key.rsplit(".lora_", 1)[0].rsplit(".", 1)[-1] for key in adapter}
    assert layers == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert sum(t.numel() for t in adapter.values()) < 0.05 * sum(t.numel() for t in base.values())
    peft = json.loads((trained / "last" / "adapter_config.json").read_text())
    assert (peft["peft_type"], peft["r"], peft["lora_alpha"], peft["base_model_name_or_path"]) == (
        "LORA",
        4,
        8.0,
        str(skytnt_model.resolve()),
    )
    assert sorted(peft["target_modules"]) == sorted(layers)
    assert any(torch.count_nonzero(t) for key, t in adapter.items() if ".lora_B." in key)  # trained: B left zero


def test_a_lora_run_loads_as_its_base_with_the_adapter(trained: Path, skytnt_model: Path, oracle: dict) -> None:
    tuned = teacher_forced(midilm.load_model(trained), oracle["tokens"])
    base = teacher_forced(midilm.load_model(skytnt_model), oracle["tokens"])
    explicit = teacher_forced(midilm.load_model(skytnt_model, adapter=trained / "best"), oracle["tokens"])
    torch.testing.assert_close(tuned, explicit, rtol=0, atol=1e-5)
    assert (tuned - base).abs().max() > 1e-3


def test_generate_evaluate_and_export_apply_the_adapter(trained: Path, chorale_store: Path, tmp_path: Path, oracle: dict) -> None:
    assert main(["generate", "--checkpoint", str(trained), "--events", "8", "--min-events", "8", "--out", str(tmp_path / "samples")]) == 0
    assert (tmp_path / "samples" / "sample-00.mid").is_file()
    assert main(["evaluate", "--checkpoint", str(trained), "--samples", "0", "--window-events", "16", "--out", str(tmp_path / "eval")]) == 0
    assert json.loads((tmp_path / "eval" / "evaluation.json").read_text())["likelihood"]["tokens"] > 0
    assert main(["export", str(trained), "--out", str(tmp_path / "adapter")]) == 0
    assert {p.name for p in (tmp_path / "adapter").iterdir()} == {"adapter_config.json", "adapter_model.safetensors", "README.md"}
    assert "LoRA rank 4, alpha 8.0" in (tmp_path / "adapter" / "README.md").read_text()
    assert main(["export", str(trained), "--merge", "--dtype", "float32", "--out", str(tmp_path / "merged")]) == 0
    expected = teacher_forced(midilm.load_model(trained), oracle["tokens"])
    for folder in ("adapter", "merged"):
        torch.testing.assert_close(teacher_forced(midilm.load_model(tmp_path / folder), oracle["tokens"]), expected, rtol=0, atol=1e-5)


@pytest.mark.skipif(not onnx_available(), reason="the [onnx] extra (onnx, onnxruntime) is not installed")
def test_an_onnx_export_of_a_skytnt_model_with_an_adapter_samples_as_torch_does(
    skytnt_model: Path, skytnt_lora: Path, tmp_path: Path
) -> None:
    """SkyTNT's model and adapter (folded into one model by the export) through ONNX Runtime, then the same
    controls and seed through PyTorch with the adapter and without it."""
    assert main(["export", str(skytnt_model), "--lora-adapter", str(skytnt_lora), "--format", "onnx", "--out", str(tmp_path / "onnx")]) == 0
    args = ["generate", "--events", "16", "--min-events", "16", "--seconds", "0", "--seed", "3", "--instruments", "piano,violin"]
    torch_path = ["--decoder", "eager", "--weights", "full"]
    assert main([*args, "--checkpoint", str(tmp_path / "onnx"), "--out", str(tmp_path / "onnx-samples")]) == 0
    assert (
        main(
            [*args, "--checkpoint", str(skytnt_model), "--lora-adapter", str(skytnt_lora), *torch_path, "--out", str(tmp_path / "adapted")]
        )
        == 0
    )
    assert main([*args, "--checkpoint", str(skytnt_model), *torch_path, "--out", str(tmp_path / "base")]) == 0
    onnx, adapted, base = (np.load(tmp_path / name / "sample-00.npy") for name in ("onnx-samples", "adapted", "base"))
    np.testing.assert_array_equal(onnx, adapted)
    assert not np.array_equal(adapted, base)  # the adapter was folded in, not left out


def test_an_adapter_on_another_base_is_refused(trained: Path, skytnt_model: Path, tmp_path: Path, chorale_store: Path) -> None:
    other = tmp_path / "other-base"
    shutil.copytree(skytnt_model, other)
    weights = load_file(other / "model.safetensors")
    weights["net.norm.weight"] = weights["net.norm.weight"] * 1.01
    save_file(weights, other / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="holds other weights .* an adapter only fits the base it was trained on"):
        load_for_inference(other, adapter=trained / "best")
    assert (
        main(["generate", "--checkpoint", str(other), "--lora-adapter", str(trained), "--events", "4", "--out", str(tmp_path / "s")]) == 2
    )
    # a run whose base changed since it started cannot resume either
    run = lora_run(chorale_store, other, tmp_path / "run", "--max-steps", "2")
    weights["net.norm.weight"] = weights["net.norm.weight"] * 1.01
    save_file(weights, other / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ConfigError, match="its weights changed since this run started"):
        midilm.resume_run(run, max_steps=4)
    with pytest.raises(CheckpointError, match="holds other weights"):
        load_for_inference(run)


def test_peft_prefixed_keys_read_the_same(skytnt_model: Path, skytnt_lora: Path, tmp_path: Path, oracle: dict) -> None:
    """peft's own save_pretrained writes base_model.model.<layer>.lora_A.weight."""
    shutil.copytree(skytnt_lora, tmp_path / "peft")
    tensors = load_file(skytnt_lora / "adapter_model.safetensors")
    save_file({f"base_model.model.{k}": v for k, v in tensors.items()}, tmp_path / "peft" / "adapter_model.safetensors")
    model = midilm.load_model(skytnt_model, adapter=tmp_path / "peft")
    torch.testing.assert_close(teacher_forced(model, oracle["tokens"]), oracle["logits_lora"], rtol=0, atol=1e-4)


def test_lora_needs_a_base_and_targets_that_exist(chorale_store: Path, tiny_gpt_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--lora trains adapters on a trained model: name it with --init"):
        main_or_raise(["train", "--data", str(chorale_store), "--out", str(tmp_path / "a"), "--preset", "tiny", *LORA, "--max-steps", "1"])
    with pytest.raises(ConfigError, match="lora targets: q_proj name no linear layer of this model; choose from .*qkv"):
        main_or_raise(
            [
                "train",
                "--data",
                str(chorale_store),
                "--init",
                str(tiny_gpt_run),
                "--out",
                str(tmp_path / "b"),
                *LORA,
                "--lora-targets",
                "q_proj",
            ]
        )


def main_or_raise(argv: list[str]) -> None:
    from midilm.cli import build_parser

    args = build_parser().parse_args(argv)
    args._run(args)


def test_lora_on_midilms_own_models_with_chosen_targets(chorale_store: Path, tiny_gpt_run: Path, tmp_path: Path) -> None:
    run = lora_run(chorale_store, tiny_gpt_run, tmp_path / "gpt-lora", "--lora-targets", "qkv,down", "--max-steps", "2")
    adapter = load_file(run / "last" / "adapter_model.safetensors")
    assert {key.split(".lora_")[0].rsplit(".", 1)[-1] for key in adapter} == {"qkv", "down"}
    assert midilm.load_model(run).config.arch == "gpt"


def test_a_lora_run_killed_with_sigkill_resumes_exactly(chorale_store: Path, skytnt_model: Path, tmp_path: Path) -> None:
    common = [
        "--data",
        str(chorale_store),
        "--init",
        str(skytnt_model),
        *LORA,
        "--max-steps",
        "24",
        "--eval-every",
        "8",
        "--checkpoint-every",
        "2",
    ]
    assert main(["train", *common, "--out", str(tmp_path / "whole")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "midilm", "train", *common, "--out", str(tmp_path / "killed")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    last = tmp_path / "killed" / "last" / "meta.json"
    while not last.exists() or json.loads(last.read_text())["step"] < 10:
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert json.loads(last.read_text())["step"] < 24
    assert main(["train", "--resume", str(tmp_path / "killed")]) == 0
    whole, killed = (load_file(tmp_path / run / "last" / "adapter_model.safetensors") for run in ("whole", "killed"))
    assert whole.keys() == killed.keys()
    for key in whole:
        torch.testing.assert_close(killed[key], whole[key], rtol=0, atol=1e-6)
    rows = [[json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()] for run in ("whole", "killed")]
    assert [r["step"] for r in rows[1]] == [r["step"] for r in rows[0]]
    assert [r.get("val_loss") for r in rows[1]] == pytest.approx([r.get("val_loss") for r in rows[0]], abs=1e-6)
