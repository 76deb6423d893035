"""Defaults always fit: every preset of every architecture trains, evaluates and samples
with no length option given (the windows follow the model's context)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from midilm.model.registry import ARCHS

GOLDEN = Path(__file__).parent / "data" / "golden"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MIDILM_HOME whose default store (where `midilm train` looks without --data)
    holds real music: the oracle's MIDI files."""
    from midilm.data import PrepareOptions, default_store_path, prepare

    home = tmp_path_factory.mktemp("home")
    os.environ["MIDILM_HOME"] = str(home)
    try:
        prepare([GOLDEN], default_store_path(), PrepareOptions(workers=1), progress=False)
    finally:
        del os.environ["MIDILM_HOME"]
    return home


def midilm(home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MIDILM_HOME": str(home), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "midilm", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"midilm {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["tiny", "small"])
@pytest.mark.parametrize("arch", ARCHS)
def test_a_preset_trains_evaluates_and_samples_with_no_length_given(home: Path, tmp_path: Path, arch: str, preset: str) -> None:
    midilm(home, tmp_path, "train", "--preset", preset, "--arch", arch, "--max-steps", "2")
    (run,) = (tmp_path / "runs").iterdir()
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["window_events"] == config["model"]["context_events"]  # the window follows the context
    samples = [] if preset == "tiny" else ["--samples", "2", "--events", "64"]  # a small model samples slowly on a CPU
    midilm(home, tmp_path, "evaluate", "--checkpoint", str(run), *samples)
    assert json.loads((run / "eval-test" / "evaluation.json").read_text())["likelihood"]["tokens"] > 0
    midilm(home, tmp_path, "generate", "--checkpoint", str(run), "--out", "samples")
    assert list((tmp_path / "samples").glob("*.mid"))
