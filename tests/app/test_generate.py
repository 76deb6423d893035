"""One press of Generate: files for every sample, prompts kept, errors shown in the page."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gradio as gr
import mido
import numpy as np
import pytest
import torch

from midilm.app import ui
from midilm.app.checkpoints import ModelCache
from midilm.app.pieces import GenerationRequest, generate_pieces
from midilm.sample import Controls, SamplingConfig
from midilm.tokenizer import tokenize


@pytest.fixture(scope="module")
def models() -> ModelCache:
    return ModelCache(torch.device("cpu"))


def test_each_sample_gets_midi_audio_and_piano_roll(models: ModelCache, tiny_run: Path, tmp_path: Path) -> None:
    steps: list[tuple[int, int, str]] = []
    request = GenerationRequest(
        str(tiny_run), SamplingConfig(num_samples=2, events=8, min_events=8, seed=5), Controls(instruments="violin", bpm=200)
    )
    generation = generate_pieces(models, request, tmp_path, lambda *step: steps.append(step))
    assert generation.folder.parent == tmp_path and generation.stop_reason == "events"
    assert [(p.index, p.seed, p.generated_events) for p in generation.pieces] == [(0, 5, 8), (1, 6, 8)]
    for piece in generation.pieces:
        assert piece.midi.parent == generation.folder
        assert piece.audio.read_bytes()[:4] == b"RIFF" and piece.piano_roll.read_bytes()[:4] == b"\x89PNG"
        tokens = np.load(piece.tokens)
        assert len(tokens) == 1 + 2 + 8  # BOS, tempo and violin, generated events
        messages = [m for track in mido.MidiFile(piece.midi).tracks for m in track]
        assert any(m.type == "program_change" and m.program == 40 for m in messages)  # violin
        assert any(m.type == "set_tempo" and round(mido.tempo2bpm(m.tempo)) == 200 for m in messages)
        record = json.loads(piece.record.read_text())
        assert record["seed"] == piece.seed and record["controls"]["instruments"] == "violin"
    assert steps[:2] == [(1, 8, "events"), (2, 8, "events")] and steps[7] == (8, 8, "events")
    assert steps[8:] == [(0, 2, "samples rendered"), (1, 2, "samples rendered")]


def test_a_prompt_is_cut_and_kept_verbatim(models: ModelCache, tiny_run: Path, prompt_path: Path, tmp_path: Path) -> None:
    request = GenerationRequest(str(tiny_run), SamplingConfig(events=4, min_events=4), Controls(), prompt=prompt_path, prompt_events=20)
    (piece,) = generate_pieces(models, request, tmp_path).pieces
    tokens = np.load(piece.tokens)
    np.testing.assert_array_equal(tokens[:21], tokenize(prompt_path).tokens[:21])
    assert len(tokens) == 25 and json.loads(piece.record.read_text())["prompt"] == "bach_bwv1.6.mid"


def page_values(**changes: object) -> dict[str, object]:
    """The Generate handler's inputs as the page sends them (sliders give floats)."""
    values: dict[str, object] = {
        "checkpoint": "",
        "adapter": "",
        "mode": ui.CONTROLS_TAB,
        "prompt_path": None,
        "prompt_events": 0,
        "prompt_seconds": 0.0,
        "programs": [0],
        "drums": "standard",
        "bpm": 0.0,
        "time_signature": "",
        "key": "",
        "num_samples": 3.0,
        "events": 6.0,
        "min_events": 6.0,
        "temperature": 1.0,
        "top_p": 0.94,
        "top_k": 20.0,
        "seed": 0,
    }
    return {**values, **changes}


def test_the_generate_handler_fills_one_slot_per_sample(models: ModelCache, tiny_run: Path, tmp_path: Path) -> None:
    generate = ui.make_generate(models, tmp_path)
    status, midi_paths, *slots = generate(**page_values(checkpoint=str(tiny_run)), progress=lambda *args, **kwargs: None)
    assert status.startswith("3 sample(s), 18 events in") and len(midi_paths) == 3
    assert len(slots) == 5 * ui.MAX_SAMPLES
    group, title, audio, roll, downloads = slots[5 * 2 : 5 * 3]
    assert group.visible is True and title.startswith("### Sample 3 · seed 2 · 6 new events")
    assert downloads == [midi_paths[2], audio] and audio.endswith("sample-02.wav") and roll.endswith("sample-02.png")
    assert slots[5 * 3].visible is False and slots[5 * 3 + 1 :][:4] == ["", None, None, None]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({}, "checkpoint: choose a model"),
        ({"checkpoint": "runs/none"}, "runs/none: no such checkpoint"),
        ({"mode": ui.PROMPT_TAB}, "Upload a prompt MIDI file first"),
        ({"key": "X"}, "key 'X'"),
        ({"min_events": 32.0}, "min_events must be in 0..events"),
    ],
)
def test_mistakes_show_as_messages_in_the_page(models: ModelCache, tmp_path: Path, changes: dict, message: str) -> None:
    generate = ui.make_generate(models, tmp_path)
    with pytest.raises(gr.Error, match=message):
        generate(**page_values(**changes), progress=lambda *args, **kwargs: None)


def test_an_upload_is_kept_and_described_or_dropped_with_the_reason(prompt_path: Path, tmp_path: Path) -> None:
    assert ui.on_upload(str(prompt_path)) == (str(prompt_path), "**bach_bwv1.6.mid**: 499 events, 491 notes, 6 tracks, 64.0 s")
    text = tmp_path / "lyrics.mid"
    text.write_text("la la la")
    kept, message = ui.on_upload(str(text))
    assert kept is None and message.startswith("⚠️ **Rejected.** lyrics.mid: not a MIDI file")
    assert ui.on_upload(None) == (None, "")


def test_continue_makes_a_sample_the_whole_prompt(prompt_path: Path) -> None:
    path, events, seconds, info, tabs, mode = ui.continue_from(["first.mid", str(prompt_path)], 1)
    assert (path, events, seconds, mode) == (str(prompt_path), 0, 0.0, ui.PROMPT_TAB)
    assert info.startswith("**bach_bwv1.6.mid**") and tabs.selected == ui.PROMPT_TAB


@pytest.mark.usefixtures("no_shipped_model")
def test_the_page_builds_with_the_runs_it_finds(runs_dir: Path, tmp_path: Path) -> None:
    app = ui.build_app(ui.AppSettings(out_dir=tmp_path, runs_dir=runs_dir, device="cpu"))
    dropdown = next(block for block in app.blocks.values() if isinstance(block, gr.Dropdown) and block.label == "Checkpoint")
    assert dropdown.value == str(runs_dir / "tiny")


@pytest.mark.usefixtures("no_shipped_model")
def test_rescanning_finds_runs_saved_since_the_page_opened(tiny_run: Path, tmp_path: Path) -> None:
    settings = ui.AppSettings(out_dir=tmp_path / "out", runs_dir=tmp_path / "runs", device="cpu")
    assert ui.rescanned(settings).choices == [] and "no model found" in ui.rescanned(settings).info
    shutil.copytree(tiny_run, settings.runs_dir / "new")
    assert [value for _, value in ui.rescanned(settings).choices] == [str(settings.runs_dir / "new")]


def test_the_generate_handler_folds_the_chosen_adapter_into_the_model(models: ModelCache, tmp_path: Path) -> None:
    skytnt = Path(__file__).resolve().parents[1] / "data" / "skytnt"
    generate = ui.make_generate(models, tmp_path)
    values = page_values(checkpoint=str(skytnt / "model"), adapter=str(skytnt / "lora"), num_samples=1.0)
    status, midi_paths, *_ = generate(**values, progress=lambda *args, **kwargs: None)
    assert status.startswith("1 sample(s), 6 events in") and len(midi_paths) == 1
    assert json.loads(Path(midi_paths[0]).with_suffix(".json").read_text())["checkpoint"].endswith("lora/adapter_model.safetensors")
