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
