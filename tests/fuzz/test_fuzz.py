"""Seeded fuzzing of every reader of untrusted input: only MidilmError, never another exception, a hang or a memory blow-up.

Each target runs in its own process (``runner.py``), every case under a time
guard (``--case-seconds``) and an address-space limit (``--memory-mb`` beyond
the process after setup). The fast slice runs by default; the long slice,
marked ``slow``, runs other seeds and ten times the cases. A failure names the
case, its mutation and where its input was kept; replay it with the command
the message prints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).with_name("runner.py")
ROOT = Path(__file__).resolve().parents[2]

FAST: tuple[tuple[str, int], ...] = (
    ("tokenize", 300),
    ("tokenize_many", 50),
    ("prepare", 12),
    ("detokenize", 300),
    ("store", 80),
    ("checkpoint", 60),
    ("tokenize-long-varints", 40),
    ("detokenize-npy-file", 60),
)
"""(target, cases) of the default run: about 15 s in all on one core."""
LONG_FACTOR = 10


def run_fuzz(target: str, *, seed: int, cases: int, work: Path, deadline_seconds: float) -> dict:
    command = [sys.executable, str(RUNNER), target, "--seed", str(seed), "--cases", str(cases), "--work", str(work)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])), "OMP_NUM_THREADS": "1"}
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=deadline_seconds, env=env)
    except subprocess.TimeoutExpired:
        left = sorted(work.glob("case-*"), key=lambda p: int(p.name.split("-")[1]))
        pytest.fail(f"{target}: no result after {deadline_seconds:g} s; the case that hangs is {left[-1] if left else 'in the setup'}")
    lines = completed.stdout.strip().splitlines()
    if completed.returncode not in (0, 1) or not lines:
        pytest.fail(f"{target}: the runner died (exit {completed.returncode}): {completed.stderr[-2000:]}")
    return json.loads(lines[-1])


def assert_no_failure(report: dict, work: Path) -> None:
    failures = report["failures"]
    if failures:
        shown = "\n".join(
            f"case {f['case']} ({f['outcome']}): {f['input'][:200]}\n  {f['detail'][-700:]}\n  kept in {f['kept']}" for f in failures[:5]
        )
        replay = f"python {RUNNER.relative_to(ROOT)} {report['target']} --seed {report['seed']} --cases {report['cases']} --work /tmp/fuzz"
        pytest.fail(
            f"{report['target']}: {len(failures)} of {report['cases']} cases failed ({report['outcomes']}); replay: {replay}\n{shown}"
        )
    assert sum(report["outcomes"].values()) == report["cases"]


@pytest.mark.parametrize(("target", "cases"), FAST)
def test_fast_slice(target: str, cases: int, tmp_path: Path) -> None:
    report = run_fuzz(target, seed=0, cases=cases, work=tmp_path / "work", deadline_seconds=300)
    assert_no_failure(report, tmp_path / "work")


@pytest.mark.slow
@pytest.mark.parametrize(("target", "cases"), FAST)
def test_long_slice(target: str, cases: int, tmp_path: Path) -> None:
    report = run_fuzz(target, seed=1, cases=cases * LONG_FACTOR, work=tmp_path / "work", deadline_seconds=900)
    assert_no_failure(report, tmp_path / "work")
