"""A tiny token store made from golden files, with the split of each file fixed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SPLITS = {
    "bach_bwv1.6": "train",
    "bach_bwv10.7": "train",
    "bach_bwv101.7": "train",
    "folk_essen_altdeu10_1": "train",
    "m21_test11": "train",
    "folk_essen_altdeu10_2": "val",
    "folk_essen_altdeu10_3": "test",
    "m21_test10": "test",
    "bach_bwv102.7": "test",
}


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory, golden_dir) -> Path:
    from midilm.data import PrepareOptions, prepare

    root = tmp_path_factory.mktemp("tiny_store")
    sources = root / "midi"
    sources.mkdir()
    lines = []
    for name, split in SPLITS.items():
        shutil.copy(golden_dir / f"{name}.mid", sources)
        lines.append(f"{sources / name}.mid {split}")
    (root / "splits.txt").write_text("\n".join(lines) + "\n")
    prepare([sources], root / "store", PrepareOptions(workers=1, split_file=str(root / "splits.txt")), progress=False)
    return root / "store"
