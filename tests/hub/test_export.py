"""``midilm export``: the Hub layout round trip (bit-equal 16-bit weights), the model card, SkyTNT's layout."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import midilm
from midilm.cli import build_parser, main
from midilm.cli.train import _configs
from midilm.errors import ConfigError
from midilm.train import load_for_inference

from .conftest import teacher_forced


@pytest.fixture(scope="module")
def evaluated_run(tiny_gpt_run: Path, chorale_store: Path) -> Path:
    """The shared tiny gpt run with `midilm evaluate` results on val and test beside its checkpoints."""
    for split in ("val", "test"):
        out = tiny_gpt_run / f"eval-{split}"
        if not (out / "evaluation.json").is_file():
            midilm.evaluate_checkpoint(tiny_gpt_run, chorale_store, split=split, samples=2, events=16, window_events=8, out=out)
    return tiny_gpt_run


def test_an_exported_model_loads_with_bit_equal_16_bit_weights(evaluated_run: Path, tmp_path: Path) -> None:
    assert main(["export", str(evaluated_run), "--out", str(tmp_path / "export")]) == 0
    assert {p.name for p in (tmp_path / "export").iterdir()} == {"config.json", "model.safetensors", "README.md"}
    stored = load_file(tmp_path / "export" / "model.safetensors")
    assert {t.dtype for t in stored.values()} == {torch.bfloat16}
    original = load_for_inference(evaluated_run).model.state_dict()
    exported = load_for_inference(tmp_path / "export")
    for name, value in exported.model.state_dict().items():
        assert torch.equal(value, original[name].to(torch.bfloat16).float()), name
        if name in stored:
            assert torch.equal(stored[name], original[name].to(torch.bfloat16)), name
    assert exported.meta["step"] == 2 and exported.run.data.tokenizer == load_for_inference(evaluated_run).run.data.tokenizer
    before = (tmp_path / "export" / "model.safetensors").read_bytes()
    assert main(["export", str(tmp_path / "export"), "--out", str(tmp_path / "export")]) == 0  # the same weights again
    assert (tmp_path / "export" / "model.safetensors").read_bytes() == before
    assert main(["export", str(tmp_path / "export"), "--out", str(tmp_path / "again")]) == 0
    assert load_file(tmp_path / "again" / "model.safetensors").keys() == stored.keys()
    assert all(torch.equal(t, stored[k]) for k, t in load_file(tmp_path / "again" / "model.safetensors").items())


def test_the_model_card_says_what_the_model_is_and_how_it_did(evaluated_run: Path, chorale_store: Path, tmp_path: Path) -> None:
    assert main(["export", str(evaluated_run), "--out", str(tmp_path / "export"), "--licence", "mit", "--name", "tiny-gpt"]) == 0
    card = (tmp_path / "export" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: midilm\nlicense: mit\n")
    for text in ("# tiny-gpt", "| architecture | `gpt`", "| parameters | 325,312 |", "| context | 32 events |", "bfloat16", "## Data"):
        assert text in card, text
    assert "files per split train 3, val 2, test 1" in card and "| not recorded | 3 |" in card  # the golden files record no licence
    assert "| val | " in card and "| test | " in card and "`midilm evaluate`" in card
    assert "syntax errors" in card and 'midilm.load_model("path/to/export")' in card
    config = json.loads((tmp_path / "export" / "config.json").read_text())
    assert config["model_type"] == "midilm" and config["tokenizer"]["optimise"] is True
    assert set(config["evaluation"]) == {"val", "test"} and config["run"]["model"]["d_ff"] > 0  # sizes are explicit


def test_the_cards_training_command_rebuilds_the_run_config(evaluated_run: Path, tmp_path: Path) -> None:
    assert main(["export", str(evaluated_run), "--out", str(tmp_path / "export")]) == 0
    card = (tmp_path / "export" / "README.md").read_text()
    command = card.split("```bash\n", 1)[1].split("\n```", 1)[0].replace("\\\n", " ")
    args = build_parser().parse_args(shlex.split(command)[1:])
    model_config, train_config, _, _ = _configs(args)
    run = load_for_inference(evaluated_run).run
    assert model_config.resolved() == run.model.resolved()
    assert train_config.resolved(model_config.context_events) == run.train.resolved(run.model.context_events)


def test_skytnt_layout_export_round_trips_and_needs_a_skytnt_model(
    skytnt_model: Path, tiny_gpt_run: Path, tmp_path: Path, oracle: dict
) -> None:
    assert main(["export", str(skytnt_model), "--format", "skytnt", "--dtype", "float32", "--out", str(tmp_path / "sky")]) == 0
    config = json.loads((tmp_path / "sky" / "config.json").read_text())
    assert config["net_config"]["num_hidden_layers"] == 8 and config["tokenizer"]["version"] == "v2"
    torch.testing.assert_close(teacher_forced(midilm.load_model(tmp_path / "sky"), oracle["tokens"]), oracle["logits"], rtol=0, atol=1e-4)
    assert "Trained outside midilm" in (tmp_path / "sky" / "README.md").read_text()
    with pytest.raises(ConfigError, match="SkyTNT layout: holds skytnt models only, not gpt"):
        midilm.export_model(midilm.ExportRequest(str(tiny_gpt_run), format="skytnt"), tmp_path / "no")
    with pytest.raises(ConfigError, match="unknown format 'onnx2'; choose one of hub, skytnt"):
        midilm.export_model(midilm.ExportRequest(str(tiny_gpt_run), format="onnx2"), tmp_path / "no")
