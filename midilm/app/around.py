"""The app's second tab: upload a MIDI file, see its tracks, keep some and add instruments
(accompany) or rewrite a span, listen, download, and write again from any result.

Handlers translate page values for :mod:`midilm.app.around_pieces`; a ``MidilmError``
becomes a message in the page. :func:`with_around_tab` puts the tab beside the generate page.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from midilm.app import forms
from midilm.app.around_pieces import ACCOMPANY, INFILL, AroundRequest, describe_song, write_request
from midilm.app.checkpoints import ModelCache
from midilm.errors import ConfigError, MidilmError
from midilm.sample.config import SamplingConfig

INTRO = """Upload a MIDI file and write around it: **keep** some of its tracks exactly as they are and **add** instruments
the model plays with them, or **rewrite** a span so that it joins the music after it. A model trained with `--anticipation`
reads the kept music ahead; any other model has it placed as its time comes. Any result can be the next input."""
ALL_CHANNELS = [str(c) for c in range(1, 17)]


def lock_fields() -> list[gr.components.Component]:
    """Allowed instruments, disabled channels, patch changes, control changes, polyphony (the order of :func:`locks`)."""
    with gr.Accordion("Locks: what the model may write", open=False):
        allowed = gr.Dropdown(
            forms.instrument_choices() + [("drums (any kit)", -1)],
            value=[],
            multiselect=True,
            label="Allowed instruments",
            info="new notes only on these; none: any",
        )
        disabled = gr.CheckboxGroup(ALL_CHANNELS, value=[], label="Disabled MIDI channels", info="10 is the drum channel")
        with gr.Row():
            patch = gr.Checkbox(value=True, label="Instrument changes")
            control = gr.Checkbox(value=True, label="Control changes (pedal, volume)")
            polyphony = gr.Number(0, precision=0, minimum=0, label="Most notes at once", info="0: no limit")
    return [allowed, disabled, patch, control, polyphony]


def locks(allowed: list[int] | None, disabled: list[str] | None, patch: bool, control: bool, polyphony: float | None) -> dict[str, Any]:
    """The lock fields of a :class:`SamplingConfig` from the page's values."""
    programs = [p for p in allowed or [] if p >= 0]
    names = [str(p) for p in programs] + (["drums"] if any(p < 0 for p in allowed or []) else [])
    return {
        "allow_instruments": ",".join(names),
        "disable_channels": ",".join(disabled or []),
        "patch_change": bool(patch),
        "control_change": bool(control),
        "max_polyphony": int(polyphony or 0),
    }


def on_song(path: str | None) -> tuple[str | None, str, Any, Any]:
    """Keep an upload and list its tracks in the pickers, or drop it and say why."""
    if not path:
        return None, "", gr.CheckboxGroup(choices=[], value=[]), gr.CheckboxGroup(choices=[], value=[])
    try:
        text, choices = describe_song(path)
    except MidilmError as exc:
        return None, f"⚠️ **Rejected.** {exc}", gr.CheckboxGroup(choices=[], value=[]), gr.CheckboxGroup(choices=[], value=[])
    return path, text, gr.CheckboxGroup(choices=choices, value=[choices[0][1]]), gr.CheckboxGroup(choices=choices, value=[])


def make_write(models: ModelCache, out_dir: Any) -> Callable[..., list[Any]]:
    """The Write button's handler: page values in, status, result paths and slots out."""
    from midilm.app.ui import MAX_SAMPLES, SLOT_FIELDS, result_updates

    def write(
        checkpoint: str,
        task: str,
        song: str | None,
        keep: list[int],
        add: list[int],
        drums: str,
        start: float,
        end: float,
        unit: str,
        tracks: list[int],
        num_samples: float,
        temperature: float,
        top_p: float,
        top_k: float,
        seed: float,
        allowed: list[int],
        disabled: list[str],
        patch: bool,
        control: bool,
        polyphony: float,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio finds the progress bar by this default)
    ) -> list[Any]:
        try:
            if not song:
                raise ConfigError("Upload a MIDI file first.")
            sampling = forms.sampling_config(
                num_samples=num_samples, events=16, min_events=0, seconds=0, temperature=temperature, top_p=top_p, top_k=top_k, seed=seed
            )
            sampling = dataclasses.replace(sampling, **locks(allowed, disabled, patch, control, polyphony))
            sampling.validate()
            request = AroundRequest(
                checkpoint, Path(song), task, sampling, list(keep or []), list(add or []), (drums or "").strip(),
                _number(start, "start"), _number(end, "end"), unit, list(tracks or []) or None,
            )  # fmt: skip
            generation = write_request(
                models,
                request,
                out_dir,
                lambda done, total, unit: progress((done, total), desc="writing" if unit == "events" else "rendering", unit=unit),
            )
        except MidilmError as exc:  # said in the status line, as on the Generate tab; earlier results stay
            return [f"⚠️ **Nothing written.** {exc}", *[gr.skip()] * (1 + SLOT_FIELDS * MAX_SAMPLES)]
        slots = [value for i in range(MAX_SAMPLES) for value in result_updates(generation.pieces, i)]
        return [generation.summary, [str(p.midi) for p in generation.pieces], *slots]

    return write


def around_tab(models: ModelCache, out_dir: Any, runs_dir: Any, chosen: str | None) -> None:
    """The tab's layout and wiring, inside the current Blocks."""
    from midilm.app.ui import RESULTS, checkpoint_dropdown, result_slots

    defaults = SamplingConfig()
    gr.Markdown(INTRO)
    task = gr.State(ACCOMPANY)
    midi_paths = gr.State([])
    with gr.Row():
        with gr.Column(scale=2, min_width=360):
            checkpoint = checkpoint_dropdown(runs_dir, chosen)
            song = gr.File(
                label=f"MIDI file (at most {forms.MAX_PROMPT_BYTES // 2**20} MB)",
                file_types=forms.MIDI_SUFFIXES,
                type="filepath",
                elem_id="song-file",
            )
            song_info = gr.Markdown(elem_id="song-info")
            with gr.Tabs():
                with gr.Tab("Accompany") as accompany_tab:
                    keep = gr.CheckboxGroup([], label="Tracks to keep", info="kept exactly as they are")
                    add = gr.Dropdown(forms.instrument_choices(), value=[0, 32], multiselect=True, label="Instruments to add")
                    drums = gr.Dropdown(forms.drum_kit_choices(), value="", label="Drums to add", info="on MIDI channel 10")
                with gr.Tab("Rewrite a span") as infill_tab:
                    with gr.Row():
                        start = gr.Number(1, label="From")
                        end = gr.Number(5, label="To (not included)")
                        unit = gr.Radio(["bars", "seconds"], value="bars", label="Unit", info="bars count from 1")
                    tracks = gr.CheckboxGroup([], label="Tracks to rewrite", info="none ticked: all of them")
            with gr.Accordion("Sampling", open=False):
                with gr.Row():
                    num_samples = gr.Slider(1, 8, value=2, step=1, label="Pieces")
                    temperature = gr.Slider(0, 2, value=defaults.temperature, step=0.05, label="Temperature")
                with gr.Row():
                    top_p = gr.Slider(0.05, 1, value=defaults.top_p, step=0.01, label="Top-p")
                    top_k = gr.Slider(0, 128, value=defaults.top_k, step=1, label="Top-k")
                seed = gr.Number(defaults.seed, precision=0, label="Seed")
            lock_values = lock_fields()
            write_button = gr.Button("Write", variant="primary")
        with gr.Column(scale=3, min_width=420):
            gr.Markdown(RESULTS.replace("continue from it", "write again from it"))
            status = gr.Markdown(elem_id="around-status", min_height=60)
            slots, again_buttons = result_slots("Write again from this piece")

    accompany_tab.select(lambda: ACCOMPANY, outputs=task)
    infill_tab.select(lambda: INFILL, outputs=task)
    song.upload(on_song, inputs=song, outputs=[song, song_info, keep, tracks])
    song.clear(lambda: "", outputs=song_info)
    write_button.click(
        make_write(models, out_dir),
        inputs=[
            checkpoint,
            task,
            song,
            keep,
            add,
            drums,
            start,
            end,
            unit,
            tracks,
            num_samples,
            temperature,
            top_p,
            top_k,
            seed,
            *lock_values,
        ],
        outputs=[status, midi_paths, *(component for slot in slots for component in slot)],
        show_progress_on=status,
    )
    for i, button in enumerate(again_buttons):
        button.click(lambda paths, index=i: on_song(paths[index]), inputs=midi_paths, outputs=[song, song_info, keep, tracks])


def with_around_tab(app: gr.Blocks, models: ModelCache, settings: Any) -> gr.Blocks:
    """The generate page and this tab, as two tabs of one page."""
    with gr.Blocks(title="midilm", analytics_enabled=False) as around:
        around_tab(models, settings.out_dir, settings.runs_dir, settings.checkpoint)
    return gr.TabbedInterface([app, around], ["Generate", "Accompany and rewrite"], title="midilm", analytics_enabled=False)


def _number(value: float | None, name: str) -> float:
    if value is None or not math.isfinite(value):
        raise ConfigError(f"{name}: enter a number (got {value!r})")
    return float(value)
