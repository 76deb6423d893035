"""A run stopped at any moment resumes exactly: kills between checkpoint writes,
Ctrl-C inside a step or an evaluation; evaluations are bounded and say what they cover."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from midilm.train import TrainConfig, resume_run
from midilm.train.batches import eval_batches

from .conftest import read_metrics

COMMON = {"max_steps": 20, "eval_every": 5, "log_every": 1}


def same_run(a: Path, b: Path) -> None:
    first, second = read_metrics(a), read_metrics(b)
    assert [r["step"] for r in second] == [r["step"] for r in first]
    assert [r["train_loss"] for r in second] == pytest.approx([r["train_loss"] for r in first], abs=1e-5)
    assert [r.get("val_loss") for r in second] == pytest.approx([r.get("val_loss") for r in first], abs=1e-5)


@pytest.fixture
def whole(golden_store: Path, tmp_path_factory: pytest.TempPathFactory, tiny_run) -> Path:
    run = tmp_path_factory.mktemp("whole") / "run"
    tiny_run(golden_store, run, **COMMON)
    return run


def test_a_kill_after_best_before_last_at_the_first_evaluation_still_resumes(golden_store: Path, tmp_path: Path, tiny_run, whole) -> None:
    tiny_run(golden_store, tmp_path / "run", **{**COMMON, "max_steps": 5})
    shutil.rmtree(tmp_path / "run" / "last")  # as if killed after writing best/, before last/
    assert (tmp_path / "run" / "best").is_dir()
    result = resume_run(tmp_path / "run", max_steps=20)
    assert result.step == 20
    same_run(whole, tmp_path / "run")


def test_a_kill_before_any_checkpoint_starts_the_run_again(golden_store: Path, tmp_path: Path, tiny_run, whole, capsys) -> None:
    tiny_run(golden_store, tmp_path / "run", **{**COMMON, "max_steps": 3})
    for name in ("last", "best"):
        shutil.rmtree(tmp_path / "run" / name)
    resume_run(tmp_path / "run", max_steps=20)
    assert "starting the run again from step 0" in capsys.readouterr().out
    same_run(whole, tmp_path / "run")


def sigint_on_call(monkeypatch: pytest.MonkeyPatch, module: object, name: str, at_call: int) -> None:
    """Press Ctrl-C (a real SIGINT to this process) inside the ``at_call``-th call of ``module.name``."""
    original = getattr(module, name)
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at_call:
            os.kill(os.getpid(), signal.SIGINT)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)


def test_ctrl_c_inside_a_step_drops_it_and_resumes_exactly(golden_store: Path, tmp_path: Path, tiny_run, whole, monkeypatch) -> None:
    from midilm.train import loop

    sigint_on_call(monkeypatch, loop, "summed_loss", at_call=8)  # inside step 8's forward
    result = tiny_run(golden_store, tmp_path / "run", **COMMON)
    monkeypatch.undo()
    assert result.stop_reason == "interrupted" and result.step == 7  # step 8 was dropped, not finished
    resume_run(tmp_path / "run")
    same_run(whole, tmp_path / "run")


def test_ctrl_c_inside_an_evaluation_stops_it_and_the_resumed_run_owes_it(
    golden_store: Path, tmp_path: Path, tiny_run, whole, monkeypatch
) -> None:
    from midilm.train import metrics

    sigint_on_call(monkeypatch, metrics.MetricSums, "add", at_call=5)  # in the second evaluation (4 batches each)
    result = tiny_run(golden_store, tmp_path / "run", **COMMON)
    monkeypatch.undo()
    assert result.stop_reason == "interrupted" and result.step == 10
    assert "val_loss" not in read_metrics(tmp_path / "run")[-1]  # the evaluation did not finish
    resume_run(tmp_path / "run")
    same_run(whole, tmp_path / "run")


def test_evaluation_is_bounded_by_default_and_spread_over_the_split() -> None:
    assert TrainConfig().eval_batches > 0
    batches = eval_batches(1000, 4, limit=2)
    chosen = [i for batch in batches for i in batch]
    assert len(chosen) == 8 and chosen[0] == 0 and chosen[-1] == 999 and chosen == sorted(chosen)
    assert eval_batches(6, 4, limit=2) == [[0, 1, 2, 3], [4, 5]]  # a small split is evaluated whole
    ranks = [eval_batches(1000, 2, world_size=2, rank=r, limit=2) for r in (0, 1)]
    assert sorted(i for rank in ranks for batch in rank for i in batch) == chosen


def test_an_evaluation_says_what_it_covers(golden_store: Path, tmp_path: Path, tiny_run, capsys) -> None:
    tiny_run(golden_store, tmp_path / "run", max_steps=2, eval_every=2, eval_batches=1, batch_size=2)
    assert "val (2 of " in capsys.readouterr().err
