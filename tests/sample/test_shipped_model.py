"""The model that ships in the package: small, 16-bit, trained on shareable data, and used by default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from midilm import vocab
from midilm.cli import main
from midilm.cli.generate import default_checkpoint
from midilm.tokenizer.grammar import invalid_rows
from midilm.train import load_for_inference

MAX_BYTES = 20 * 1024 * 1024


def test_the_shipped_model_is_small_16_bit_and_says_what_it_was_trained_on() -> None:
    folder = default_checkpoint()  # an exported folder: config.json, model.safetensors, README.md
    weights = folder / "model.safetensors"
    assert weights.stat().st_size <= MAX_BYTES
    assert {t.dtype for t in load_file(weights).values()} == {torch.bfloat16}
    loaded = load_for_inference()  # no source: the shipped model
    assert loaded.source == weights
    assert loaded.run.vocab["vocab_size"] == vocab.VOCAB_SIZE
    assert Path(loaded.run.data.store).name == "music21-bach-essen"  # the bundled corpus, which has no Palestrina
    assert loaded.meta["step"] > 0 and loaded.meta["val_nats_per_event"] < 3.0
    card = (folder / "README.md").read_text()
    assert "non-commercial use" in card and "| essen-noncommercial | 6,747 |" in card and "| test | 2.677 |" in card
    alone = load_for_inference(weights)  # the weights file alone rebuilds the same model (its metadata holds the run config)
    assert all(torch.equal(a, b) for a, b in zip(alone.model.state_dict().values(), loaded.model.state_dict().values(), strict=True))


def test_generate_without_a_checkpoint_uses_the_shipped_model(tmp_path: Path, capsys) -> None:
    assert main(["generate", "--events", "24", "--min-events", "24", "--out", str(tmp_path)]) == 0
    tokens = np.load(tmp_path / "sample-00.npy")
    assert tokens.shape == (25, 8) and not invalid_rows(tokens).any()
    assert (tmp_path / "sample-00.mid").stat().st_size > 30
    assert "sample-00.mid" in capsys.readouterr().out


def test_the_shipped_model_accompanies_a_melody_to_its_end_in_a_few_voices() -> None:
    """As a new user would: an Essen melody with piano and bass. Given too few tracks, the
    model once stacked a dozen notes per onset and ran out of events a fifth of the way in."""
    from midilm import anticipation
    from midilm.sample import SamplingConfig
    from midilm.sample.accompany import accompany
    from midilm.sample.song import Song

    melody = Path(__file__).parents[1] / "data" / "golden" / "folk_essen_altdeu10_1.mid"
    result = accompany(melody, keep="1", add="piano,bass", config=SamplingConfig(num_samples=1, seed=1))
    tokens, kept = result.samples[0], result.kept_rows[0]
    new_notes = ~kept & (tokens[:, 0] == vocab.EVENT_ID["note"])
    onsets = anticipation.stream_onsets(tokens)[new_notes]
    assert result.generation.stop_reason == "eos"
    assert onsets.max() >= 0.9 * Song.load(melody).end()
    assert new_notes.sum() / len(set(onsets.tolist())) < 4  # notes per onset: a texture, not clusters
