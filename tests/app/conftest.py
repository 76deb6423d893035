"""A tiny trained model in a runs folder, shared by the app's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from midilm.data import PrepareOptions, prepare
from midilm.model import preset_config
from midilm.train import TrainConfig, start_run

PROMPT_NAME = "bach_bwv1.6.mid"


@pytest.fixture(scope="session")
def runs_dir(golden_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``runs/tiny``: a gpt of the tiny preset after a few steps on six chorales
    (seconds to train; its music is noise, but every file type comes out)."""
    root = tmp_path_factory.mktemp("app")
    store = root / "store"
    prepare(sorted(golden_dir.glob("bach_*.mid"))[:6], store, PrepareOptions(workers=1), progress=False)
    train = TrainConfig(seq_len=64, stride=32, batch_size=8, max_steps=2, eval_every=2, log_every=1, eval_batches=2)
    start_run(store, root / "runs" / "tiny", preset_config("gpt", "tiny"), train)
    return root / "runs"


@pytest.fixture(scope="session")
def tiny_run(runs_dir: Path) -> Path:
    return runs_dir / "tiny"


@pytest.fixture
def prompt_path(golden_dir: Path) -> Path:
    return golden_dir / PROMPT_NAME


@pytest.fixture
def no_shipped_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs only: the list does not depend on whether a default model is installed."""
    from midilm.app import checkpoints

    monkeypatch.setattr(checkpoints, "shipped_model", lambda: None)
