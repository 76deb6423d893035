from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "train.py"


def test_bench_prints_one_line_per_arch_with_ratio_to_baseline():
    command = [sys.executable, str(BENCH), "--arch", "gpt,hier", "--baseline", "seed", "--preset", "tiny"]
    command += ["--batch", "2", "--window-events", "8", "--steps", "2", "--warmup", "1", "--threads", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["arch"] for line in lines] == ["seed", "gpt", "hier"]
    assert lines[0]["ratio_vs_baseline"] == 1.0
    for line in lines:
        assert line["train_tokens_per_s"] > 0 and line["params"] > 0 and line["baseline"] == "seed"
