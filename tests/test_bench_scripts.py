"""Every benchmark script starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("*.py")))
def test_bench_script_starts(script: str) -> None:
    result = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout


def test_gpu_script_prints_and_writes_every_figure_in_quick_mode(tmp_path: Path) -> None:
    """bench/gpu.py on the CPU with tiny shapes: a training line with and without compile and a
    sampling line per batch size for every model, the same lines on stdout and in --out."""
    import json

    out = tmp_path / "gpu.jsonl"
    args = [sys.executable, str(BENCH / "gpu.py"), "--device", "cpu", "--quick", "--out", str(out)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=BENCH.parent)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [json.loads(line) for line in result.stdout.splitlines()] == lines
    models = {"gpt-tiny", "hier-tiny", "skytnt-medium-shape-tiny"}
    train = {(x["model"], x["compile"]) for x in lines if x["figure"] == "train"}
    assert train == {(m, c) for m in models for c in (False, True)}
    sample = {(x["model"], x["batch"]) for x in lines if x["figure"] == "sample"}
    assert sample == {(m, b) for m in models for b in (1, 8, 64)}
    for line in lines[1:]:
        assert line.get("train_tokens_per_s", line.get("events_per_s")) > 0
        assert "mfu" in line or line["figure"] == "sample"


@pytest.mark.slow
def test_finetune_script_prints_both_arms_scored_on_the_same_windows(chorale_store: Path, tiny_gpt_run: Path) -> None:
    """bench/finetune.py with a tiny base for a few seconds per arm: the base's and both runs' figures, and the ratios."""
    import json

    args = [sys.executable, str(BENCH / "finetune.py"), "--data", str(chorale_store), "--init", str(tiny_gpt_run)]
    args += ["--minutes", "0.05", "--lora", "4", "--window-events", "16", "--batch", "2", "--val-windows", "4"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=BENCH.parent)
    assert result.returncode == 0, result.stderr
    header, base, full, lora, ratios = (json.loads(line) for line in result.stdout.splitlines())
    assert header["window_events"] == 16 and base["run"] == "base" and base["val_nats_per_event"] > 0
    assert (full["run"], full["lora_rank"], lora["run"], lora["lora_rank"]) == ("full", 0, "lora", 4)
    assert 0 < lora["trainable_parameters"] < full["trainable_parameters"]
    assert all(run["steps"] > 0 and run["tokens_per_s"] > 0 and run["val_nats_per_event"] > 0 for run in (full, lora))
    assert ratios["lora_vs_full_trainable"] == round(lora["trainable_parameters"] / full["trainable_parameters"], 4)
