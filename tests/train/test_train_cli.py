"""``midilm train`` as users run it: the CLI, Ctrl-C and SIGKILL, torchrun with 2 processes, notebook checkpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from midilm.cli import main

from .conftest import read_metrics

TINY = [
    "--arch",
    "gpt",
    "--preset",
    "tiny",
    "--window-events",
    "8",
    "--stride-events",
    "4",
    "--batch-size",
    "8",
    "--log-every",
    "5",
    "--eval-batches",
    "4",
]


def midilm(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "midilm", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )


def test_bad_settings_stop_before_training(golden_store: Path, tmp_path: Path, capsys) -> None:
    assert main(["train", "--data", str(golden_store), "--out", str(tmp_path / "r"), *TINY, "--window-events", "4096"]) == 2
    assert "does not fit the model's context" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    assert str(tmp_path / "missing") in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "r"), "--lr", "0.1"]) == 2
    assert "only --max-steps and --max-minutes" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--arch", "lstm"])
    assert not (tmp_path / "r").exists()


def test_config_file_and_command_line_combine(golden_store: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": {"arch": "gpt", "preset": "tiny", "n_layers": 1}, "train": {"lr": 0.002, "max_steps": 3}}))
    assert (
        main(
            [
                "train",
                "--data",
                str(golden_store),
                "--out",
                str(tmp_path / "r"),
                "--config",
                str(config),
                "--max-steps",
                "4",
                "--window-events",
                "8",
                "--stride-events",
                "4",
                "--batch-size",
                "4",
            ]
        )
        == 0
    )
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["model"]["n_layers"] == 1 and saved["model"]["d_model"] == 64
    assert saved["train"]["lr"] == 0.002 and saved["train"]["max_steps"] == 4


def test_a_notebook_checkpoint_initialises_seed(golden_store: Path, tmp_path: Path) -> None:
    from midilm.model import build_model, preset_config

    notebook = build_model(preset_config("seed", "tiny"))
    torch.save(
        {"epoch": 3, "model_state_dict": notebook.state_dict(), "val_loss": 4.2, "vocab_size": 3406, "sequence_length": 512},
        tmp_path / "best_model_lm.pt",
    )
    args = ["--window-events", "8", "--stride-events", "4", "--batch-size", "8", "--max-steps", "3"]
    assert (
        main(["train", "--data", str(golden_store), "--out", str(tmp_path / "ft"), "--init", str(tmp_path / "best_model_lm.pt"), *args])
        == 0
    )
    saved = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert saved["model"]["arch"] == "seed" and saved["train"]["lr"] == 1e-4  # the fine-tuning default


@pytest.mark.slow
def test_sigkill_at_any_moment_then_resume_matches_an_uninterrupted_run(golden_store: Path, tmp_path: Path) -> None:
    common = ["--data", str(golden_store), *TINY, "--eval-every", "10", "--checkpoint-every", "2", "--max-steps", "40"]
    assert main(["train", *common, "--out", str(tmp_path / "whole")]) == 0
    process = midilm("train", *common, "--out", str(tmp_path / "killed"))
    while not (tmp_path / "killed" / "last").exists() or json.loads((tmp_path / "killed" / "last" / "meta.json").read_text())["step"] < 12:
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert main(["train", "--resume", str(tmp_path / "killed")]) == 0
    whole, killed = read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "killed")
    assert [r["step"] for r in killed] == [r["step"] for r in whole]
    assert killed[-1]["val_loss"] == pytest.approx(whole[-1]["val_loss"], abs=1e-3)


@pytest.mark.slow
def test_ctrl_c_saves_and_says_how_to_resume(golden_store: Path, tmp_path: Path) -> None:
    process = midilm("train", "--data", str(golden_store), "--out", str(tmp_path / "run"), *TINY, "--max-steps", "100000")
    while not (tmp_path / "run" / "metrics.jsonl").exists():
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130
    assert f"midilm train --resume {tmp_path / 'run'}" in output
    meta = json.loads((tmp_path / "run" / "last" / "meta.json").read_text())
    assert meta["step"] >= 5


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(golden_store: Path, tmp_path: Path) -> None:
    common = ["--data", str(golden_store), *TINY, "--dropout", "0", "--max-steps", "12", "--eval-every", "6", "--checkpoint-every", "3"]
    assert main(["train", *common, "--out", str(tmp_path / "one")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517", "-m", "midilm"]
    result = subprocess.run(
        [*torchrun, "train", *common, "--out", str(tmp_path / "two")], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    one, two = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two")
    assert [r["step"] for r in two] == [r["step"] for r in one]
    assert [r["train_loss"] for r in two] == pytest.approx([r["train_loss"] for r in one], abs=1e-4)
    assert two[-1]["val_loss"] == pytest.approx(one[-1]["val_loss"], abs=1e-4)
    assert two[-1]["val_tokens"] == one[-1]["val_tokens"]  # validation covered every window once, over both ranks
    # and it resumes on another number of processes
    assert main(["train", "--resume", str(tmp_path / "two"), "--max-steps", "18"]) == 0
    assert read_metrics(tmp_path / "two")[-1]["step"] == 18
