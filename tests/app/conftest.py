"""A tiny trained model in a runs folder, shared by the app's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

PROMPT_NAME = "bach_bwv1.6.mid"


@pytest.fixture(scope="session")
def runs_dir(tiny_gpt_run: Path) -> Path:
    """A runs folder holding ``tiny`` (the shared tiny gpt run)."""
    return tiny_gpt_run.parent


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
