"""ONNX export as users run it, sampling it without torch, and streaming."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from midilm import vocab
from midilm.cli import main
from midilm.errors import CheckpointError, ConfigError
from midilm.model import build_model, preset_config
from midilm.model.onnx_model import load_onnx
from midilm.model.sampling import onnx_available
from midilm.sample import SamplingConfig, generate, start_rows, stream
from midilm.sample.arrays import NumpyOps, TorchOps
from midilm.sample.choose import choose, make_generators
from midilm.sample.grammar import GrammarMask

needs_onnx = pytest.mark.skipif(not onnx_available(), reason="the [onnx] extra (onnx, onnxruntime) is not installed")
REPO = Path(__file__).resolve().parents[2]


def tiny(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(preset_config(arch, "tiny")).eval()


@pytest.mark.parametrize("top_k, top_p, temperature", [(20, 0.94, 1.0), (0, 1.0, 1.3), (5, 0.5, 0.7), (20, 0.9, 0.0)])
def test_numpy_and_torch_arrays_choose_the_same_tokens(top_k, top_p, temperature) -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, vocab.VOCAB_SIZE)).astype(np.float32) * 3
    config = SamplingConfig(num_samples=6, top_k=top_k, top_p=top_p, temperature=temperature, seed=4)
    skip = np.array([False, True, False, False, True, False])
    event_index = np.array([0, 1, 2, 3, 4, 5])
    finished = np.array([False, False, False, False, True, False])
    chosen = []
    for ops, to_array in ((NumpyOps(), np.asarray), (TorchOps(torch.device("cpu")), torch.from_numpy)):
        mask = GrammarMask(ops).for_slot(1, event_index, False, finished)
        tokens = np.stack([choose(to_array(logits), mask, config, make_generators(config), skip, ops) for _ in range(3)])
        chosen.append(tokens)
    np.testing.assert_array_equal(chosen[0], chosen[1])
    assert (chosen[0][:, 4] == vocab.PAD).all()  # the finished sample is held at PAD


@needs_onnx
@pytest.mark.parametrize("arch", ["seed", "gpt", "hier"])
def test_onnx_sampling_gives_the_eager_samples_for_a_seed(arch: str) -> None:
    """Float32 weights both ways: the logits agree within 1e-5, and the draws are the same numbers."""
    model = tiny(arch)
    config = SamplingConfig(num_samples=2, events=24, min_events=24, seed=7, weights="full")
    eager = generate(model, SamplingConfig(**{**vars(config), "decoder": "eager"}))
    onnx = generate(model, SamplingConfig(**{**vars(config), "decoder": "onnx"}))
    for a, b in zip(eager, onnx, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("decoder", ["eager", pytest.param("onnx", marks=needs_onnx)])
def test_stream_yields_the_rows_generate_returns_after_the_prompt(decoder: str) -> None:
    model = tiny("hier")
    config = SamplingConfig(events=30, seed=3, decoder=decoder)
    prompt = start_rows()
    rows = list(stream(model, config, prompt=prompt))
    (whole,) = generate(model, config, prompt=prompt)
    assert all(row.shape == (vocab.EVENT_LEN,) for row in rows)
    np.testing.assert_array_equal(np.stack(rows), whole[len(prompt) :])


def test_a_stream_stopped_early_keeps_what_it_yielded_and_restores_threads() -> None:
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model = tiny("gpt")
        config = SamplingConfig(events=40, min_events=40, seed=1, decoder="eager")
        rows = stream(model, config)
        first = [next(rows) for _ in range(5)]
        assert torch.get_num_threads() == 1  # sampling's own thread count while the stream is open
        rows.close()  # what Ctrl-C in the consuming loop or a `break` does
        assert torch.get_num_threads() == 2
        (whole,) = generate(model, config)
        np.testing.assert_array_equal(np.stack(first), whole[1:6])
    finally:
        torch.set_num_threads(previous)


def test_stream_refuses_a_batch() -> None:
    with pytest.raises(ConfigError, match="num_samples must be 1"):
        next(stream(tiny("gpt"), SamplingConfig(num_samples=2)))


@needs_onnx
def test_an_exported_folder_generates_from_the_cli_without_importing_torch(tiny_gpt_run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "onnx"
    assert main(["export", str(tiny_gpt_run), "--format", "onnx", "--out", str(folder)]) == 0
    record = json.loads((folder / "model.json").read_text())
    assert record["run"]["model"]["arch"] == "gpt" and (folder / "tokens.onnx").stat().st_size > 100_000
    args = ["generate", "--checkpoint", str(folder), "--events", "16", "--min-events", "16", "--seed", "2"]
    script = (
        "import sys\nfrom midilm.cli import main\n"
        f"code = main({[*args, '--out', str(tmp_path / 'onnx-samples')]!r})\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\nsys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (
        main([*args, "--checkpoint", str(tiny_gpt_run), "--decoder", "eager", "--weights", "full", "--out", str(tmp_path / "torch")]) == 0
    )
    np.testing.assert_array_equal(np.load(tmp_path / "onnx-samples" / "sample-00.npy"), np.load(tmp_path / "torch" / "sample-00.npy"))

    # a folder of the first format (steps that return their new keys) is refused with what to do
    (folder / "model.json").write_text(json.dumps({**record, "format_version": 1}))
    with pytest.raises(CheckpointError, match=r"model.json: written by an older midilm .* export the checkpoint again"):
        load_onnx(folder)


def test_an_unknown_decoder_is_refused_with_the_choices() -> None:
    from midilm.model.sampling import chosen_decoder

    model = tiny("gpt")
    with pytest.raises(ConfigError, match="decoder: 'fast' is not one of"):
        chosen_decoder(model, "fast")
    with pytest.raises(ConfigError, match="decoder must be"):
        SamplingConfig(decoder="fast").validate()
