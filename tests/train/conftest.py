"""A small real token store (the golden MIDI files) and a helper that trains tiny models on it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from midilm.data import PrepareOptions, prepare
from midilm.model import preset_config
from midilm.tokenizer import TokenizerOptions
from midilm.train import TrainConfig, TrainResult, start_run

TINY_TRAIN = {"window_events": 8, "stride_events": 4, "batch_size": 8, "eval_every": 10, "log_every": 5, "eval_batches": 4}
"""Small windows and batches: a step of a tiny model takes milliseconds."""


def make_store(sources: list[Path], out: Path, **options: object) -> Path:
    tokenizer = options.pop("tokenizer", None)
    prepare(sources, out, PrepareOptions(workers=1, **options), tokenizer, progress=False)
    return out


@pytest.fixture(scope="session")
def golden_store(golden_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store([golden_dir], tmp_path_factory.mktemp("stores") / "golden")


@pytest.fixture(scope="session")
def golden_raw_store(golden_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same files tokenized without optimise_midi: another tokenizer spec."""
    return make_store([golden_dir], tmp_path_factory.mktemp("stores") / "golden-raw", tokenizer=TokenizerOptions(optimise=False))


def tiny_config(arch: str = "gpt", **train: object) -> TrainConfig:
    window = {"window_events": 16, "stride_events": 8} if arch == "hier" else {}  # hier sees 8x more events for the same cost
    return TrainConfig(**{**TINY_TRAIN, **window, **train})


@pytest.fixture
def tiny_run() -> Callable[..., TrainResult]:
    """Train a tiny model; keyword arguments override the tiny training settings."""

    def run(store: Path, out: Path, arch: str = "gpt", **train: object) -> TrainResult:
        return start_run(store, out, preset_config(arch, "tiny"), tiny_config(arch, **train))

    return run


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
