"""Training runs: loss falls, checkpoints round-trip, resume is exact, bad settings stop early."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from midilm.errors import CheckpointError, ConfigError
from midilm.model import ModelConfig, build_model, preset_config
from midilm.train import TrainConfig, export_weights, load_for_inference, resume_run, start_run
from midilm.train.checkpoint import save_checkpoint
from midilm.train.config import RunConfig

from .conftest import make_store, read_metrics, tiny_config


def test_loss_falls_on_real_music(golden_store: Path, tmp_path: Path, tiny_run) -> None:
    result = tiny_run(golden_store, tmp_path / "run", max_steps=40, lr=3e-3)
    rows = read_metrics(tmp_path / "run")
    val = [r["val_loss"] for r in rows if "val_loss" in r]
    assert len(val) == 4 and val[-1] < val[0] - 1.0  # well below the first evaluation
    assert val[0] < math.log(3406)  # already better than uniform after 10 steps
    assert result.step == 40 and result.stop_reason == "max_steps"
    assert {"step", "train_loss"} <= rows[0].keys()
    assert {"val_ppl", "val_nats_per_event", "val_acc_pitch", "val_acc_event"} <= rows[-1].keys()
    assert (tmp_path / "run" / "curves.png").stat().st_size > 10_000


def test_checkpoint_round_trip_gives_the_same_logits(golden_store: Path, tmp_path: Path, tiny_run) -> None:
    tiny_run(golden_store, tmp_path / "run", max_steps=10)
    last = load_for_inference(tmp_path / "run" / "last")
    best = load_for_inference(tmp_path / "run")  # a run folder means its best checkpoint
    assert best.source.parent.name == "best"
    tokens = torch.randint(3, 3000, (2, 40))
    with torch.no_grad():
        torch.testing.assert_close(last.model(tokens), best.model(tokens))  # best == last at the only evaluation
    state = torch.load(tmp_path / "run" / "last" / "state.pt", weights_only=True)
    assert state["position"]["step"] == 10 and "optimizer" in state and "rng" in state
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["identity"] and config["data"]["tokenizer"]["tokenizer_version"]
    assert config["vocab"]["vocab_size"] == 3406


def test_exported_weights_are_16_bit_and_self_contained(golden_store: Path, tmp_path: Path, tiny_run) -> None:
    tiny_run(golden_store, tmp_path / "run", max_steps=10)
    loaded = load_for_inference(tmp_path / "run")
    shipped = tmp_path / "elsewhere" / "model.safetensors"
    shipped.parent.mkdir()
    export_weights(shipped, loaded.model, loaded.run, loaded.meta)
    assert {t.dtype for t in load_file(shipped).values()} == {torch.bfloat16}
    again = load_for_inference(shipped)  # no meta.json or config.json beside it
    assert again.meta["step"] == 10 and again.run.model == loaded.run.model and again.run.data == loaded.run.data
    tokens = torch.randint(3, 3000, (2, 40))
    with torch.no_grad():
        torch.testing.assert_close(again.model(tokens), loaded.model(tokens), atol=0.1, rtol=0.05)


@pytest.mark.parametrize("arch", ["gpt", "hier"])
def test_resume_continues_exactly(golden_store: Path, tmp_path: Path, tiny_run, arch: str) -> None:
    tiny_run(golden_store, tmp_path / "whole", arch, max_steps=30)
    tiny_run(golden_store, tmp_path / "split", arch, max_steps=15)
    result = resume_run(tmp_path / "split", max_steps=30)
    whole, split = read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "split")
    assert [r["step"] for r in split] == [r["step"] for r in whole]  # appended, nothing logged twice
    assert result.last_metrics["loss"] == pytest.approx(whole[-1]["val_loss"], abs=1e-3)
    assert [r["train_loss"] for r in split] == pytest.approx([r["train_loss"] for r in whole], abs=1e-5)


def test_resume_of_a_finished_run_says_so(golden_store: Path, tmp_path: Path, tiny_run, capsys) -> None:
    tiny_run(golden_store, tmp_path / "run", max_steps=10)
    result = resume_run(tmp_path / "run", max_steps=10)
    assert result.step == 10 and "nothing to do" in capsys.readouterr().out


def test_a_kill_between_the_renames_leaves_a_loadable_checkpoint(golden_store: Path, tmp_path: Path, tiny_run) -> None:
    tiny_run(golden_store, tmp_path / "run", max_steps=10)
    last = tmp_path / "run" / "last"
    last.rename(last.with_name("last.old"))  # as if killed after moving the old one away
    (tmp_path / "run" / "last.tmp").mkdir()  # and a half-written new one
    result = resume_run(tmp_path / "run", max_steps=20)
    assert result.step == 20


def test_a_window_beyond_the_context_is_refused(golden_store: Path, tmp_path: Path) -> None:
    model = preset_config("gpt", "tiny")
    with pytest.raises(ConfigError, match="does not fit the model's context"):
        start_run(golden_store, tmp_path / "run", model, TrainConfig(window_events=model.context_events + 1))
    assert not (tmp_path / "run").exists()  # nothing written before the check


def test_windows_shorter_than_the_context_are_pointed_out(golden_store: Path, tmp_path: Path, capsys) -> None:
    model = preset_config("gpt", "tiny")
    start_run(golden_store, tmp_path / "short", model, tiny_config(max_steps=1))
    assert f"never train the last {model.context_events - 8} of the model's {model.context_events} events" in capsys.readouterr().out
    model.context_events = 8
    start_run(golden_store, tmp_path / "matched", model, tiny_config(max_steps=1))
    assert "never train" not in capsys.readouterr().out


def test_an_empty_split_is_refused(golden_dir: Path, tmp_path: Path) -> None:
    store = make_store([golden_dir / "bach_bwv10.7.mid"], tmp_path / "one")  # one file: two splits stay empty
    with pytest.raises(ConfigError, match="split is empty"):
        start_run(store, tmp_path / "run", preset_config("gpt", "tiny"), tiny_config())


def test_resume_refuses_a_store_built_with_other_tokenizer_options(
    golden_store: Path, golden_raw_store: Path, tmp_path: Path, tiny_run
) -> None:
    tiny_run(golden_store, tmp_path / "run", max_steps=5, eval_every=5)
    path = tmp_path / "run" / "config.json"
    config = json.loads(path.read_text())
    config["data"]["store"] = str(golden_raw_store)
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="other tokenizer options"):
        resume_run(tmp_path / "run", max_steps=10)


def test_fine_tuning_refuses_a_checkpoint_of_other_tokens(golden_store: Path, golden_raw_store: Path, tmp_path: Path, tiny_run) -> None:
    tiny_run(golden_store, tmp_path / "run", max_steps=5, eval_every=5)
    with pytest.raises(ConfigError, match="other tokenizer options"):
        start_run(golden_raw_store, tmp_path / "ft", None, tiny_config(), init=tmp_path / "run")


def test_a_checkpoint_of_another_vocabulary_is_refused(tmp_path: Path) -> None:
    config = ModelConfig(**{**vars(preset_config("gpt", "tiny")), "vocab_size": 4000})
    model = build_model(config)
    save_checkpoint(tmp_path / "ckpt", model, RunConfig(model=model.config), {"step": 1}, None)
    with pytest.raises(CheckpointError, match="vocabulary of 4000 tokens"):
        load_for_inference(tmp_path / "ckpt")


def test_fine_tuning_starts_from_the_checkpoint_on_another_store(golden_store: Path, golden_dir: Path, tmp_path: Path, tiny_run) -> None:
    tiny_run(golden_store, tmp_path / "base", max_steps=10)
    other = make_store(sorted(golden_dir.glob("folk_*.mid")), tmp_path / "folk", split_ratios=(0.5, 0.5, 0.0))
    config = tiny_config(max_steps=5, eval_every=5, lr=1e-4, freeze_embeddings=True)
    result = start_run(other, tmp_path / "ft", None, config, init=tmp_path / "base")
    base, tuned = load_for_inference(tmp_path / "base"), load_for_inference(tmp_path / "ft" / "last")
    assert result.step == 5
    assert json.loads((tmp_path / "ft" / "config.json").read_text())["init"] == str(tmp_path / "base")
    torch.testing.assert_close(tuned.model.token_embed.weight, base.model.token_embed.weight)  # frozen
    assert not torch.equal(tuned.model.stack.blocks[0].attn.qkv.weight, base.model.stack.blocks[0].attn.qkv.weight)


def test_gradient_accumulation_follows_the_same_path(golden_store: Path, tmp_path: Path, tiny_run) -> None:
    common = {"max_steps": 10, "eval_every": 10, "batch_size": 8}
    model = preset_config("gpt", "tiny")
    model.dropout = 0.0  # dropout draws differ with the micro-batch layout
    start_run(golden_store, tmp_path / "one", model, tiny_config(**common))
    start_run(golden_store, tmp_path / "two", model, tiny_config(**common, grad_accum=2))
    one, two = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two")
    assert [r["train_loss"] for r in two] == pytest.approx([r["train_loss"] for r in one], abs=1e-4)
    assert two[-1]["val_loss"] == pytest.approx(one[-1]["val_loss"], abs=1e-4)


def test_same_seed_same_run_other_seed_other_run(golden_store: Path, tmp_path: Path, tiny_run) -> None:
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        tiny_run(golden_store, tmp_path / name, max_steps=5, eval_every=5, seed=seed)
    a, b, c = (read_metrics(tmp_path / name)[-1]["val_loss"] for name in "abc")
    assert a == b and a != c


def test_stalled_validation_lowers_the_rate_then_stops_the_run(golden_store: Path, tmp_path: Path, tiny_run, monkeypatch) -> None:
    from midilm.train import loop

    losses = iter([5.0, 4.0, 4.5, 4.6, 4.7, 4.8, 4.9])
    monkeypatch.setattr(loop, "val_metrics", lambda session, interrupt: {"loss": next(losses), "ppl": 1.0, "nats_per_event": 1.0})
    result = tiny_run(golden_store, tmp_path / "run", lr=1e-3, max_steps=100, eval_every=2, plateau_patience=1, early_stop_patience=3)
    rows = {r["step"]: r for r in read_metrics(tmp_path / "run") if "val_loss" in r}
    assert result.stop_reason == "early_stopping" and result.step == 10  # three evaluations without a new best
    assert rows[8]["lr"] == 1e-3 and rows[10]["lr"] == 5e-4  # halved after the second evaluation without one
    assert json.loads((tmp_path / "run" / "best" / "meta.json").read_text())["step"] == 4


def test_warmup_then_cosine_schedule(golden_store: Path, tmp_path: Path, tiny_run) -> None:
    tiny_run(golden_store, tmp_path / "run", schedule="cosine", warmup_steps=5, max_steps=20, log_every=1, lr=1e-3, min_lr_ratio=0.1)
    lrs = [r["lr"] for r in read_metrics(tmp_path / "run")]
    assert lrs[:6] == pytest.approx([2e-4, 4e-4, 6e-4, 8e-4, 1e-3, 1e-3])  # the rate each step used
    assert lrs[-1] == pytest.approx(1e-4)  # the last step at the floor
    assert all(a > b for a, b in zip(lrs[5:], lrs[6:], strict=False))  # falls after the warmup


def test_tensorboard_logs_the_scalars(golden_store: Path, tmp_path: Path, tiny_run) -> None:
    pytest.importorskip("tensorboard")
    tiny_run(golden_store, tmp_path / "run", max_steps=5, eval_every=5, tensorboard=True)
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))


def test_epochs_end_with_an_evaluation_and_the_run_stops_after_max_epochs(chorale_store: Path, tmp_path: Path, tiny_run) -> None:
    result = tiny_run(chorale_store, tmp_path / "run", "hier", eval_every=0, max_epochs=3, max_steps=0)
    rows = read_metrics(tmp_path / "run")
    evaluated = [r for r in rows if "val_loss" in r]
    per_epoch = evaluated[0]["step"]
    assert [r["step"] for r in evaluated] == [per_epoch, 2 * per_epoch, 3 * per_epoch]
    assert [r["epoch"] for r in evaluated] == [1.0, 2.0, 3.0]
    assert result.stop_reason == "max_epochs" and result.step == 3 * per_epoch
    resumed = resume_run(tmp_path / "run", max_steps=0)  # nothing left: max_epochs holds
    assert resumed.step == 3 * per_epoch


def test_resume_across_an_epoch_boundary(chorale_store: Path, tmp_path: Path, tiny_run) -> None:
    tiny_run(chorale_store, tmp_path / "whole", "hier", max_steps=20, eval_every=4)
    tiny_run(chorale_store, tmp_path / "split", "hier", max_steps=5, eval_every=4)
    resume_run(tmp_path / "split", max_steps=20)
    whole, split = read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "split")
    assert whole[-1]["epoch"] > 1  # the runs crossed into a second epoch
    assert [r["train_loss"] for r in split] == pytest.approx([r["train_loss"] for r in whole], abs=1e-5)
