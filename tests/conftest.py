"""Fixtures shared by every test folder.

The oracle files of the reference tokenizer live in ``tests/data/golden``
(copied from the project's shared folder, so the suite never reads outside the
repository).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# One thread per test process: on a small shared machine, torch's thread pool
# oversubscribes the cores and tiny models run many times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

DATA_DIR = Path(__file__).parent / "data"
GOLDEN_DIR = DATA_DIR / "golden"


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    return GOLDEN_DIR


@pytest.fixture(scope="session")
def golden_manifest() -> dict:
    return json.loads((GOLDEN_DIR / "manifest.json").read_text())


@pytest.fixture(scope="session")
def bundled_corpus_home() -> Path:
    """midilm's cache (``$MIDILM_HOME``, else ``~/.cache/midilm``) with the bundled corpus prepared in its
    default store, as ``midilm prepare`` leaves it: converted once per machine, later sessions only check it."""
    from midilm.data import prepare_corpus
    from midilm.data.paths import cache_root

    prepare_corpus(progress=False)
    return cache_root()


@pytest.fixture(scope="session")
def chorale_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A token store of six Bach chorales: enough real music for a tiny model."""
    from midilm.data import PrepareOptions, prepare

    store = tmp_path_factory.mktemp("chorales") / "store"
    prepare(sorted(GOLDEN_DIR.glob("bach_*.mid"))[:6], store, PrepareOptions(workers=1), progress=False)
    return store


@pytest.fixture(scope="session")
def tiny_gpt_run(chorale_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``runs/tiny``: a gpt of the tiny preset after two steps on the chorales
    (seconds to train; its music is noise, but every file type comes out)."""
    from midilm.model import preset_config
    from midilm.train import TrainConfig, start_run

    run = tmp_path_factory.mktemp("runs") / "runs" / "tiny"
    train = TrainConfig(window_events=8, stride_events=4, batch_size=8, max_steps=2, eval_every=2, log_every=1, eval_batches=2)
    start_run(chorale_store, run, preset_config("gpt", "tiny"), train)
    return run


@pytest.fixture(scope="session")
def tiny_anticipation_run(chorale_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hier of the tiny preset after two steps with ``--anticipation 4``: it reads kept events ahead."""
    from midilm.model import preset_config
    from midilm.train import TrainConfig, start_run

    run = tmp_path_factory.mktemp("runs") / "antic"
    train = TrainConfig(
        window_events=32, stride_events=16, batch_size=8, max_steps=2, eval_every=2, log_every=1, eval_batches=2, anticipation=4
    )
    start_run(chorale_store, run, preset_config("hier", "tiny"), train)
    return run
