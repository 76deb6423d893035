"""One press of Generate: files for every sample, prompts kept, errors shown in the page."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch

from midilm.app import ui
from midilm.app.checkpoints import ModelCache
from midilm.app.pieces import GenerationRequest, generate_pieces
from midilm.sample import Controls, SamplingConfig
from midilm.tokenizer import read_score, tokenize


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
        events = [e for track in read_score(piece.midi).to_list()[1:] for e in track]
        assert any(e[0] == "patch_change" and e[3] == 40 for e in events)  # violin
        assert any(e[0] == "set_tempo" and round(60e6 / e[2]) == 200 for e in events)
        record = json.loads(piece.record.read_text())
        assert record["seed"] == piece.seed and record["controls"]["instruments"] == "violin"
        assert record["stopped_by"] == piece.stopped_by == "events" and "stopped at the event limit" in piece.title
    assert steps[:2] == [(1, 8, "events"), (2, 8, "events")] and steps[7] == (8, 8, "events")
    assert steps[8:] == [(0, 2, "samples rendered"), (1, 2, "samples rendered")]


def test_a_prompt_is_cut_and_kept_verbatim(models: ModelCache, tiny_run: Path, prompt_path: Path, tmp_path: Path) -> None:
    request = GenerationRequest(str(tiny_run), SamplingConfig(events=4, min_events=4), Controls(), prompt=prompt_path, prompt_events=20)
    (piece,) = generate_pieces(models, request, tmp_path).pieces
    tokens = np.load(piece.tokens)
    np.testing.assert_array_equal(tokens[:21], tokenize(prompt_path).tokens[:21])
    assert len(tokens) == 25 and json.loads(piece.record.read_text())["prompt"] == "bach_bwv1.6.mid"


def test_without_a_seed_each_press_draws_a_fresh_one(models: ModelCache, tiny_run: Path, tmp_path: Path) -> None:
    generate = ui.make_generate(models, tmp_path)
    presses = [
        list(generate(**page_values(checkpoint=str(tiny_run), num_samples=1.0, seed=""), progress=no_progress))[-1] for _ in range(2)
    ]
    titles = [slots[1] for _, _, *slots in presses]
    seeds = [int(title.split("seed ")[1].split(" ")[0]) for title in titles]
    assert seeds[0] != seeds[1]
    records = [json.loads(Path(paths[0]).with_suffix(".json").read_text()) for _, paths, *_ in presses]
    assert [r["seed"] for r in records] == seeds  # what the page shows is what was used


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
        "seconds": 0.0,  # an untrained model's few events may span minutes
        "seed": "0",  # the page sends what was typed
        "allowed": [],
        "disabled": [],
        "patch_change": True,
        "control_change": True,
        "max_polyphony": 0.0,
    }
    return {**values, **changes}


def no_progress(*args: object, **kwargs: object) -> None:
    return None


def test_the_generate_handler_fills_one_slot_per_sample(models: ModelCache, tiny_run: Path, tmp_path: Path) -> None:
    generate = ui.make_generate(models, tmp_path)
    status, midi_paths, *slots = list(generate(**page_values(checkpoint=str(tiny_run)), progress=no_progress))[-1]
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
        ({"mode": ui.PROMPT_TAB}, "Upload a prompt MIDI file first"),  # none uploaded, or the upload was rejected
        ({"key": "X"}, "key 'X'"),
        ({"min_events": 32.0}, "min_events must be in 0..events"),
    ],
)
def test_mistakes_show_as_messages_in_the_page(models: ModelCache, tmp_path: Path, capfd, changes: dict, message: str) -> None:
    generate = ui.make_generate(models, tmp_path)
    status, *others = list(generate(**page_values(**changes), progress=no_progress))[-1]  # a message, so Gradio shows no "Error" pill
    assert status.startswith("⚠️ **Nothing generated.**") and message in status
    assert len(others) == 1 + ui.SLOT_FIELDS * ui.MAX_SAMPLES and all(o == {"__type__": "update"} for o in others)  # results stay
    assert "Traceback" not in capfd.readouterr().err


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


def test_the_piano_rolls_grow_while_sampling_and_stop_keeps_what_exists(models: ModelCache, tiny_run: Path, tmp_path: Path) -> None:
    stops = ui.StopRequests()
    generate = ui.make_generate(models, tmp_path, stops, live_every_s=0.0)
    request = gr.Request(session_hash="me")
    updates = generate(
        **page_values(checkpoint=str(tiny_run), num_samples=2.0, events=64.0, min_events=64.0),
        request=request,
        progress=lambda *a, **k: None,
    )
    first, second = next(updates), next(updates)
    for update, events in ((first, 1), (second, 2)):
        status, midi_paths, *slots = update
        assert status == f"sampling: {events} of 64 events" and midi_paths == []
        group, title, audio, roll, downloads = slots[5:10]
        assert group.visible and title == f"### Sample 2 · sampling… {events} events so far" and audio is None and downloads is None
        assert Path(roll).read_bytes()[:4] == b"\x89PNG"
    stops.ask("me")
    status, midi_paths, *slots = list(updates)[-1]
    assert status.startswith("2 sample(s), 6 events") and len(midi_paths) == 2
    assert all(slots[5 * i + 1].endswith("stopped with the Stop button") for i in range(2))
    assert len(np.load(Path(midi_paths[0]).with_suffix(".npy"))) == 1 + 2 + 3  # BOS, piano and drums, the events sampled before Stop


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="the [onnx] extra is not installed")
def test_an_onnx_export_generates_in_the_app(models: ModelCache, tiny_run: Path, tmp_path: Path) -> None:
    from midilm.cli import main

    folder = tmp_path / "exported"
    assert main(["export", str(tiny_run), "--format", "onnx", "--out", str(folder)]) == 0
    request = GenerationRequest(str(folder), SamplingConfig(events=6, min_events=6, seed=2), Controls(instruments="piano"))
    (piece,) = generate_pieces(models, request, tmp_path / "out").pieces
    assert piece.generated_events == 6 and piece.piano_roll.read_bytes()[:4] == b"\x89PNG"
    assert json.loads(piece.record.read_text())["checkpoint"] == str(folder)


def test_the_generate_handler_folds_the_chosen_adapter_into_the_model(models: ModelCache, tmp_path: Path) -> None:
    skytnt = Path(__file__).resolve().parents[1] / "data" / "skytnt"
    generate = ui.make_generate(models, tmp_path)
    values = page_values(checkpoint=str(skytnt / "model"), adapter=str(skytnt / "lora"), num_samples=1.0)
    status, midi_paths, *_ = list(generate(**values, progress=no_progress))[-1]
    assert status.startswith("1 sample(s), 6 events in") and len(midi_paths) == 1
    assert json.loads(Path(midi_paths[0]).with_suffix(".json").read_text())["checkpoint"].endswith("lora/adapter_model.safetensors")


def test_the_write_handler_of_the_accompany_tab_keeps_a_voice_and_fills_the_slots(
    models: ModelCache, tiny_run: Path, prompt_path: Path, tmp_path: Path
) -> None:
    from midilm.app import around

    write = around.make_write(models, tmp_path)
    locks = {"allowed": [], "disabled": [], "patch": True, "control": True, "polyphony": 0}
    status, midi_paths, *slots = write(
        str(tiny_run), around.ACCOMPANY, str(prompt_path), [1], [0, 32], "", 1, 5, "bars", [], 2, 1.0, 0.94, 20, 3,
        *locks.values(), progress=no_progress,
    )  # fmt: skip
    assert status.startswith("2 sample(s), ") and len(midi_paths) == 2
    group, title, audio, roll, downloads = slots[:5]
    assert group.visible is True and audio.endswith(".wav") and roll.endswith(".png")


def test_the_write_handler_says_what_is_missing_in_the_status_line(
    models: ModelCache, tiny_run: Path, prompt_path: Path, tmp_path: Path
) -> None:
    from midilm.app import around

    write = around.make_write(models, tmp_path)
    status, *rest = write(
        str(tiny_run), around.ACCOMPANY, str(prompt_path), [], [0], "", 1, 5, "bars", [], 1, 1.0, 0.94, 20, 3, [], [], True, True, 0,
        progress=no_progress,
    )  # fmt: skip
    assert status == "⚠️ **Nothing written.** keep: tick at least one track to keep"
