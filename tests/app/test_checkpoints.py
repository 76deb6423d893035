"""Which models the page offers, and loading each one once."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from midilm.app import checkpoints
from midilm.app.checkpoints import DEFAULT_MODEL_LABEL, ModelCache, checkpoint_choices
from midilm.errors import CheckpointError, ConfigError


def age(run: Path, seconds: float) -> None:
    """Set the modification time of a run's checkpoint files ``seconds`` in the past."""
    for path in run.rglob("*.safetensors"):
        stat = path.stat()
        os.utime(path, (stat.st_atime - seconds, stat.st_mtime - seconds))


def older_and_newer(tiny_run: Path, runs: Path, older: str, newer: str) -> None:
    """Two copies of the tiny run in ``runs``, ``older`` saved an hour before ``newer``."""
    shutil.copytree(tiny_run, runs / older)
    shutil.copytree(tiny_run, runs / newer)
    age(runs / older, 3600)


@pytest.mark.usefixtures("no_shipped_model")
def test_runs_are_offered_newest_first_and_other_folders_are_not(tiny_run: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    older_and_newer(tiny_run, runs, "older", "newer")
    (runs / "empty").mkdir()
    (runs / "notes").mkdir()
    (runs / "notes" / "model.safetensors.txt").write_text("not a checkpoint")
    (runs / "stray-file.txt").write_text("")
    assert checkpoint_choices(runs) == [
        (f"{runs / 'newer'} (best, step 2)", str(runs / "newer")),
        (f"{runs / 'older'} (best, step 2)", str(runs / "older")),
    ]


@pytest.mark.usefixtures("no_shipped_model")
def test_a_run_with_damaged_metadata_is_named_and_does_not_hide_the_others(tiny_run: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    older_and_newer(tiny_run, runs, "good", "damaged")
    (runs / "damaged" / "best" / "meta.json").write_bytes(b"\x00\xff not json")
    choices = checkpoint_choices(runs)
    assert choices[1] == (f"{runs / 'good'} (best, step 2)", str(runs / "good"))
    label, path = choices[0]
    assert path == str(runs / "damaged") and label.startswith(f"{runs / 'damaged'} (best, unreadable: ")
    assert "meta.json" in label


@pytest.mark.usefixtures("no_shipped_model")
def test_a_chosen_checkpoint_comes_first_and_only_once(runs_dir: Path, tiny_run: Path) -> None:
    weights_folder = tiny_run / "last"
    assert checkpoint_choices(runs_dir, str(weights_folder)) == [
        (str(weights_folder), str(weights_folder)),
        (f"{tiny_run} (best, step 2)", str(tiny_run)),
    ]
    assert checkpoint_choices(runs_dir, str(tiny_run)) == [(f"{tiny_run} (best, step 2)", str(tiny_run))]


def test_the_shipped_model_is_offered_when_installed(runs_dir: Path, tiny_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tiny_run / "best" / "model.safetensors"
    monkeypatch.setattr(checkpoints, "shipped_model", lambda: weights)
    assert checkpoint_choices(runs_dir)[0] == (DEFAULT_MODEL_LABEL, str(weights))


@pytest.mark.usefixtures("no_shipped_model")
def test_a_missing_runs_folder_offers_nothing(tmp_path: Path) -> None:
    assert checkpoint_choices(tmp_path / "no-runs-here") == []


def test_a_model_loads_once_and_again_after_its_checkpoint_is_rewritten(tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    cache = ModelCache(torch.device("cpu"), capacity=2)
    first = cache.get(str(run))
    assert cache.get(str(run / "best" / "model.safetensors")) is first  # the same file by another name
    age(run, -10)  # a training still running saved a new best
    reloaded = cache.get(str(run))
    assert reloaded is not first
    other = cache.get(str(run / "last"))
    cache.get(str(run))
    cache.get(str(tiny_run))  # a third model evicts the least recently used (last)
    assert cache.get(str(run)) is reloaded
    assert cache.get(str(run / "last")) is not other


def test_no_checkpoint_or_a_wrong_one_is_named() -> None:
    cache = ModelCache(torch.device("cpu"))
    with pytest.raises(ConfigError, match="choose a model"):
        cache.get("  ")
    with pytest.raises(CheckpointError, match="no-such-run: no such checkpoint"):
        cache.get("no-such-run")


@pytest.mark.usefixtures("no_shipped_model")
def test_model_folders_lora_runs_and_adapters_are_offered(tmp_path: Path, tiny_run: Path, chorale_store: Path) -> None:
    import midilm
    from midilm.app.checkpoints import adapter_choices

    skytnt = Path(__file__).resolve().parents[1] / "data" / "skytnt"
    runs = tmp_path / "runs"
    shutil.copytree(skytnt / "model", runs / "skytnt")
    shutil.copytree(skytnt / "lora", runs / "skytnt-lora")  # records no base: offered as an adapter only
    midilm.export_model(midilm.ExportRequest(str(tiny_run)), runs / "exported")
    train = midilm.TrainConfig(window_events=8, batch_size=4, max_steps=2, eval_every=2, eval_batches=1, lora=2)
    midilm.start_run(chorale_store, runs / "lora", None, train, init=tiny_run)
    labels = dict(checkpoint_choices(runs))
    assert labels[f"{runs / 'skytnt'} (SkyTNT model)"] == str(runs / "skytnt")
    assert labels[f"{runs / 'exported'} (exported model)"] == str(runs / "exported")
    assert labels[f"{runs / 'lora'} (best, step 2, LoRA adapter)"] == str(runs / "lora")
    assert not any("skytnt-lora" in label for label in labels)
    assert adapter_choices(runs) == [
        ("none", ""),
        (str(runs / "lora"), str(runs / "lora")),
        (str(runs / "skytnt-lora"), str(runs / "skytnt-lora")),
    ]
    cache = ModelCache(torch.device("cpu"))
    plain, tuned = cache.get(str(runs / "skytnt")), cache.get(str(runs / "skytnt"), str(runs / "skytnt-lora"))
    assert tuned is not plain and cache.get(str(runs / "skytnt"), "") is plain
    assert not torch.equal(tuned.model.net.layers[0].self_attn.q_proj.weight, plain.model.net.layers[0].self_attn.q_proj.weight)
