"""Training with --anticipation: windows rearranged without losing an event, the model learns, checkpoints record it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from midilm import anticipation, vocab
from midilm.data import TokenStore
from midilm.data.anticipate import anticipation_example
from midilm.errors import CheckpointError, ConfigError
from midilm.model import preset_config
from midilm.train import load_for_inference, start_run
from midilm.train.checkpoint import check_vocab
from midilm.train.config import RunConfig

from .conftest import read_metrics, tiny_config


def note(gap_beats: int, step: int, track: int) -> np.ndarray:
    return vocab.encode_event("note", time1=gap_beats, time2=step, track=track, channel=0, pitch=60 + track, velocity=90, duration=4)


def timed(stream: np.ndarray, rows: np.ndarray, events: np.ndarray) -> list[tuple]:
    """(onset, row without its time slots) of the event rows of a stream."""
    return [
        (onset, *row)
        for onset, row in zip(anticipation.stream_onsets(stream)[events].tolist(), rows[:, [0, 3, 4, 5, 6, 7]].tolist(), strict=True)
    ]


def test_the_interleaving_rule_by_hand() -> None:
    ordinary = np.stack([note(0, 0, 1), note(2, 0, 1), note(2, 0, 1)])  # onsets 0, 32, 64 (1/16 beats)
    kept = np.stack([note(0, 0, 2), note(0, 0, 2), note(0, 0, 2)])  # onsets given apart: 40, 48, 100
    onsets, kept_onsets = np.array([0, 32, 64]), np.array([40, 48, 100])
    rows, used = anticipation.interleave(ordinary, onsets, kept, kept_onsets, delta=16)
    # 40 - 16 and 48 - 16 are reached by the ordinary row at 32; 100 - 16 by none
    assert used == 2 and [anticipation.is_anticipated(r[:1])[0] for r in rows] == [False, False, True, True, False]
    assert (rows[2, 1] - vocab.PARAM_OFFSET["time1"], rows[2, 2] - vocab.PARAM_OFFSET["time2"]) == (anticipation.OFFSET_BEATS, 8)
    assert anticipation.stream_onsets(rows).tolist() == [0, 32, 40, 48, 64]
    everything = anticipation.interleave_all(ordinary, onsets, kept, kept_onsets, delta=16)
    assert anticipation.stream_onsets(everything).tolist()[-1] == 100 and len(everything) == 6


def test_windows_keep_every_event_at_its_time(chorale_store: Path) -> None:
    store = TokenStore(chorale_store)
    rng = np.random.default_rng(0)
    changed = 0
    for i in range(200):
        tokens = np.asarray(store.tokens(int(rng.choice(store.split("train"))))).astype(np.int64)
        first = int(rng.integers(0, len(tokens) - 64))
        window = tokens[first : first + 65]
        out = anticipation_example(window, 64, np.random.default_rng(i))
        assert out.shape == window.shape
        changed += not np.array_equal(out, window)
        events = (window[:, 0] >= vocab.FIRST_EVENT_ID) & (window[:, 0] <= vocab.LAST_EVENT_ID)
        plain = np.stack([anticipation.ordinary_row(r) for r in out[events]])
        assert sorted(timed(window, window[events], events)) == sorted(timed(out, plain, events))
    assert 100 < changed < 200  # most windows are rearranged, about a quarter are left plain


def test_an_anticipation_model_learns_and_records_what_it_was_trained_with(chorale_store: Path, tmp_path: Path) -> None:
    run = tmp_path / "antic"
    start_run(chorale_store, run, preset_config("hier", "tiny"), tiny_config("hier", max_steps=40, lr=3e-3, anticipation=4))
    val = [r["val_loss"] for r in read_metrics(run) if "val_loss" in r]
    assert len(val) == 4 and val[-1] < val[0] - 1.0
    loaded = load_for_inference(run)
    assert loaded.model.config.vocab_size == anticipation.VOCAB_SIZE and loaded.run.train.anticipation == 4
    assert loaded.run.vocab["anticipation"] == anticipation.spec()
    config = json.loads((run / "config.json").read_text())
    config["vocab"]["anticipation"]["offset_beats"] = 32
    with pytest.raises(CheckpointError, match="anticipation ids"):
        check_vocab(RunConfig.from_json_dict(config, "edited"), "edited")


def test_fine_tuning_a_plain_model_with_anticipation_grows_its_vocabulary(chorale_store: Path, tiny_gpt_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "ft"
    start_run(chorale_store, run, preset_config("gpt", "tiny"), tiny_config(max_steps=2, anticipation=4), init=tiny_gpt_run)
    loaded = load_for_inference(run)
    assert loaded.model.config.vocab_size == anticipation.VOCAB_SIZE and loaded.run.train.anticipation == 4
    with pytest.raises(ConfigError, match="LoRA cannot train new ids"):
        start_run(
            chorale_store,
            tmp_path / "lora",
            preset_config("gpt", "tiny"),
            tiny_config(max_steps=1, anticipation=4, lora=4),
            init=tiny_gpt_run,
        )


@pytest.mark.parametrize("arch", ["seed", "gpt", "hier", "skytnt"])
def test_a_grown_vocabulary_keeps_every_old_weight(arch: str) -> None:
    import torch

    from midilm.model import build_model, make_decoder
    from midilm.model.build import with_vocabulary
    from midilm.sample import start_rows

    torch.manual_seed(0)
    model = build_model(preset_config(arch, "tiny")).eval()
    grown = with_vocabulary(model, anticipation.VOCAB_SIZE).eval()
    assert grown.config.vocab_size == anticipation.VOCAB_SIZE
    logits = []
    for m in (model, grown):
        decoder = make_decoder(m, 1)
        decoder.prefill(start_rows()[None].astype(np.int64))
        logits.append(decoder.logits()[0])
    assert logits[1].shape == (anticipation.VOCAB_SIZE,)
    torch.testing.assert_close(logits[1][: vocab.VOCAB_SIZE], logits[0])
    with pytest.raises(ConfigError, match="cannot shrink"):
        with_vocabulary(grown, vocab.VOCAB_SIZE)
