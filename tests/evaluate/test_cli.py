"""``midilm evaluate`` end to end on a model trained for one step on a tiny store."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from midilm import vocab
from midilm.cli import main
from midilm.cli.evaluate import run_folder
from midilm.data import TokenStore
from midilm.errors import ConfigError
from midilm.evaluate import evaluate_checkpoint
from midilm.evaluate.run import memorization


@pytest.fixture(scope="module")
def tiny_run(tiny_store, tmp_path_factory) -> Path:
    from midilm.model import preset_config
    from midilm.train import TrainConfig, start_run

    out = tmp_path_factory.mktemp("evaluate") / "run"
    start_run(
        tiny_store,
        out,
        preset_config("gpt", "tiny"),
        TrainConfig(max_steps=1, batch_size=2, window_events=8, stride_events=8, device="cpu"),
    )
    return out


def test_evaluate_cli_writes_the_report_and_counts_every_test_token(tiny_run, tiny_store, capsys):
    argv = [
        "evaluate",
        "--checkpoint",
        str(tiny_run),
        "--samples",
        "3",
        "--events",
        "16",
        "--min-events",
        "16",
        "--reference-pieces",
        "3",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    out = tiny_run / "eval-test"
    for name in ("evaluation.json", "report.md", "distances.png", "histograms.png", "samples/sample-000.mid", "samples/sample-002.png"):
        assert (out / name).is_file(), name
    result = json.loads((out / "evaluation.json").read_text())

    store = TokenStore(tiny_store)
    files = store.split("test")
    rows = [np.asarray(store.tokens(int(i))) for i in files]
    assert result["likelihood"]["tokens"] == sum(int((r[1:] != vocab.PAD).sum()) for r in rows)
    assert result["likelihood"]["events"] == sum(len(r) - 1 for r in rows)
    assert result["likelihood"]["window_events"] == 8  # the run's training window
    lik = result["likelihood"]
    assert lik["bits_per_second"] == pytest.approx(lik["loss"] * lik["tokens"] / math.log(2) / lik["seconds"])

    assert result["syntax"] == {"rows": 3 * 16, "invalid_rows": 0, "error_rate": 0.0}
    assert result["samples"]["events_mean"] == 16
    assert sorted(result["reference"]["files"]) == files.tolist()
    assert set(result["music"]) >= {"pitch_class_histogram", "pitch_range", "polyphony", "note_density", "inter_onset_interval"}
    assert len(result["memorization"]["per_sample"]) == 3
    assert result["memorization"]["train_files"] == len(store.split("train"))
    report = (out / "report.md").read_text()
    assert "bits per second" in report and "![distances.png](distances.png)" in report
    assert "syntax errors 0/48 rows" in capsys.readouterr().out


def test_memorization_finds_a_copied_training_file(tiny_store):
    store = TokenStore(tiny_store)
    train_file = int(store.split("train")[1])
    copied = np.asarray(store.tokens(train_file))[:41]  # BOS and 40 events
    result = memorization([copied], [], store)
    [run] = result["per_sample"]
    path = next(r["path"] for r in store.records if r.get("index") == train_file)
    assert (run["events"], run["sample_event"], run["train_file"], run["path"], run["train_event"]) == (40, 0, train_file, path, 0)
    assert result["longest"] == 40 and result["mean_share"] == 1.0


def test_python_api_likelihood_only(tiny_run, tiny_store, tmp_path):
    result = evaluate_checkpoint(tiny_run / "last", tiny_store, split="val", samples=0, device="cpu", out=tmp_path / "eval")
    assert result["likelihood"]["split"] == "val" and "music" not in result
    assert "## Likelihood" in (tmp_path / "eval" / "report.md").read_text()
    with pytest.raises(ConfigError, match="unknown evaluation setting"):
        evaluate_checkpoint(tiny_run, tiny_store, sample=3)


def test_results_go_beside_checkpoints_not_inside_them(tmp_path):
    run = tmp_path / "run"
    (run / "best").mkdir(parents=True)
    (run / "best" / "model.safetensors").write_bytes(b"")
    assert run_folder(run) == run
    assert run_folder(run / "best") == run
    assert run_folder(run / "best" / "model.safetensors") == run
    assert run_folder(tmp_path / "exported.safetensors") == tmp_path
