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
