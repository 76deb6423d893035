"""SkyTNT's oracle (a small random MIDIModel saved by SkyTNT's own code, with its
logits; see tests/data/skytnt/README.md), stores, and a Hugging Face cache built by hand."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

SKYTNT = Path(__file__).resolve().parents[1] / "data" / "skytnt"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="session")
def oracle() -> dict[str, torch.Tensor]:
    """tokens [2, 16, 8], hidden, logits [2, 15, 8, V], loss, and the same with the LoRA adapter."""
    return load_file(SKYTNT / "cases.safetensors")


@pytest.fixture(scope="session")
def skytnt_model() -> Path:
    return SKYTNT / "model"


@pytest.fixture(scope="session")
def skytnt_lora() -> Path:
    return SKYTNT / "lora"


@pytest.fixture(scope="session")
def raw_store(golden_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six chorales tokenized without optimise_midi (--no-optimise)."""
    from midilm.data import PrepareOptions, prepare
    from midilm.tokenizer import TokenizerOptions

    store = tmp_path_factory.mktemp("raw") / "store"
    prepare(sorted(golden_dir.glob("bach_*.mid"))[:6], store, PrepareOptions(workers=1), TokenizerOptions(optimise=False), progress=False)
    return store


def hub_cache(root: Path, repo: str, files: Path, commit: str = COMMIT) -> Path:
    """A Hugging Face cache (the layout ``huggingface_hub`` writes) holding ``files`` as
    the snapshot ``commit`` of ``repo``, which ``main`` points to; returns the snapshot folder."""
    storage = root / f"models--{repo.replace('/', '--')}"
    snapshot = storage / "snapshots" / commit
    shutil.copytree(files, snapshot)
    (storage / "refs").mkdir(parents=True)
    (storage / "refs" / "main").write_text(commit)
    return snapshot


def teacher_forced(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Logits [B, N-1, 8, V] of every event after the first, as SkyTNT's validation_step computes them."""
    with torch.no_grad():
        return model(tokens[:, :-1], tokens[:, 1:])
