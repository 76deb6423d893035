"""The page: a Gradio Blocks layout wired to ``forms``, ``checkpoints`` and ``pieces``.

Handlers only translate between page values and those modules; a
``MidilmError`` becomes a message in the page (never a traceback).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gradio as gr

from midilm import vocab
from midilm.app import forms
from midilm.app.around import lock_fields, locks, with_around_tab
from midilm.app.checkpoints import ModelCache, checkpoint_choices
from midilm.app.pieces import GenerationRequest, Piece, generate_pieces
from midilm.errors import MidilmError
from midilm.sample.config import Controls, SamplingConfig

MAX_SAMPLES = 8
"""Result slots on the page, so the most samples one press can ask for."""
CONTROLS_TAB, PROMPT_TAB = "controls", "prompt"
MODEL_CHOOSES = "model's choice"
INTRO = """# midilm
Generate music with a MIDI language model. Start from **controls** (instruments, drums, tempo, metre, key; leave
them empty to let the model choose) or continue a **prompt MIDI** file, then press **Generate**."""
RESULTS = "### Samples\nEach sample appears here with a player, its piano roll, MIDI and WAV downloads, and a button to continue from it."


@dataclass
class AppSettings:
    """Where the app finds models and writes samples."""

    out_dir: Path = field(metadata={"help": "folder that receives one subfolder of samples per press of Generate"})
    runs_dir: Path = field(default=Path("runs"), metadata={"help": "folder whose runs are offered as checkpoints"})
    checkpoint: str | None = field(default=None, metadata={"help": "checkpoint chosen when the page opens"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:N or mps"})


def checkpoint_hint(runs_dir: Path, *, found: bool) -> str:
    """The line under the checkpoint list; with nothing to list, how to get a model."""
    if found:
        return f"the shipped model, a run under {runs_dir}/, or type the path of a run folder or weights file"
    return f"no model found (none shipped, no run under {runs_dir}/): type the path of a run folder or weights file, or train one with `midilm train`"


def rescanned(settings: AppSettings) -> gr.Dropdown:
    """The checkpoint list again, with runs saved since the page opened."""
    choices = checkpoint_choices(settings.runs_dir, settings.checkpoint)
    return gr.Dropdown(choices=choices, info=checkpoint_hint(settings.runs_dir, found=bool(choices)))


def rejection(error: MidilmError) -> str:
    """Why an upload was refused, as the page shows it under the upload."""
    return f"⚠️ **Rejected.** {error}"


def on_upload(path: str | None) -> tuple[str | None, str]:
    """Keep an uploaded prompt and describe it, or drop it and say why."""
    if not path:
        return None, ""
    try:
        return path, forms.describe_prompt(path)
    except MidilmError as exc:
        return None, rejection(exc)


def continue_from(midi_paths: list[str], index: int) -> tuple[str | None, int, float, str, Any, str]:
    """A result as the next prompt (whole), with the prompt tab shown:
    (prompt file, prompt events, prompt seconds, its description, tabs, mode)."""
    path, info = on_upload(midi_paths[index])
    return path, 0, 0.0, info, gr.Tabs(selected=PROMPT_TAB), PROMPT_TAB


def result_updates(pieces: list[Piece], index: int) -> list[Any]:
    """The values of result slot ``index``: visibility, title, audio, piano roll, downloads."""
    if index >= len(pieces):
        return [gr.Group(visible=False), "", None, None, None]
    piece = pieces[index]
    return [gr.Group(visible=True), f"### {piece.title}", str(piece.audio), str(piece.piano_roll), [str(piece.midi), str(piece.audio)]]


def make_generate(models: ModelCache, out_dir: Path) -> Callable[..., list[Any]]:
    """The Generate button's handler: page values in, status, result paths and slots out."""

    def generate(
        checkpoint: str,
        mode: str,
        prompt_path: str | None,
        prompt_events: float,
        prompt_seconds: float,
        programs: list[int],
        drums: str,
        bpm: float,
        time_signature: str,
        key: str,
        num_samples: float,
        events: float,
        min_events: float,
        temperature: float,
        top_p: float,
        top_k: float,
        seed: float,
        allowed: list[int],
        disabled: list[str],
        patch_change: bool,
        control_change: bool,
        max_polyphony: float,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio finds the progress bar by this default)
    ) -> list[Any]:
        try:
            sampling = forms.sampling_config(
                num_samples=num_samples, events=events, min_events=min_events, temperature=temperature, top_p=top_p, top_k=top_k, seed=seed
            )
            request = GenerationRequest(
                checkpoint=checkpoint,
                sampling=replace(sampling, **locks(allowed, disabled, patch_change, control_change, max_polyphony)),
                controls=Controls(),
            )
            request.sampling.validate()
            if mode == PROMPT_TAB:
                if not prompt_path:
                    raise gr.Error("Upload a prompt MIDI file first (or switch to the Controls tab).")
                forms.check_prompt(prompt_path)
                request.prompt = Path(prompt_path)
                request.prompt_events, request.prompt_seconds = forms.prompt_cut(events=prompt_events, seconds=prompt_seconds)
            else:
                request.controls = forms.controls(programs=programs, drums=drums, bpm=bpm, time_signature=time_signature, key=key)
            generation = generate_pieces(
                models,
                request,
                out_dir,
                lambda done, total, unit: progress((done, total), desc="generating" if unit == "events" else "rendering", unit=unit),
            )
        except MidilmError as exc:
            raise gr.Error(str(exc)) from exc
        slots = [value for i in range(MAX_SAMPLES) for value in result_updates(generation.pieces, i)]
        return [generation.summary, [str(p.midi) for p in generation.pieces], *slots]

    return generate


@dataclass
class StartFields:
    """The two ways to start a piece, as tabs: controls, or a prompt MIDI file."""

    tabs: gr.Tabs
    controls_tab: gr.Tab
    prompt_tab: gr.Tab
    controls: list[gr.components.Component]
    """instruments, drum kit, tempo, time signature, key (the handler's order)"""
    prompt_file: gr.File
    prompt_info: gr.Markdown
    prompt_cut: list[gr.Number]
    """first N events, first S seconds"""


def start_fields() -> StartFields:
    with gr.Tabs(selected=CONTROLS_TAB) as tabs:
        with gr.Tab("Controls", id=CONTROLS_TAB) as controls_tab:
            programs = gr.Dropdown(
                forms.instrument_choices(), value=[], multiselect=True, label="Instruments", info="General MIDI; none: the model chooses"
            )
            drums = gr.Dropdown(forms.drum_kit_choices(), value="", label="Drum kit", info="on MIDI channel 10")
            bpm = gr.Slider(0, vocab.PARAM_SIZES["bpm"] - 1, value=0, step=1, label="Tempo (bpm)", info="0: the model chooses")
            with gr.Row():
                time_signature = gr.Dropdown(
                    [(MODEL_CHOOSES, "")] + forms.TIME_SIGNATURE_CHOICES, value="", allow_custom_value=True, label="Time signature"
                )
                key = gr.Dropdown([(MODEL_CHOOSES, "")] + forms.KEY_CHOICES, value="", label="Key signature")
        with gr.Tab("Prompt MIDI", id=PROMPT_TAB) as prompt_tab:
            prompt_file = gr.File(
                label=f"Prompt MIDI (at most {forms.MAX_PROMPT_BYTES // 2**20} MB)", file_types=forms.MIDI_SUFFIXES, type="filepath"
            )
            prompt_info = gr.Markdown(elem_id="prompt-info")
            with gr.Row():
                prompt_events = gr.Number(0, precision=0, minimum=0, label="Keep the first N events", info="0: all")
                prompt_seconds = gr.Number(0, minimum=0, label="or the first S seconds", info="0: all")
    return StartFields(
        tabs,
        controls_tab,
        prompt_tab,
        [programs, drums, bpm, time_signature, key],
        prompt_file,
        prompt_info,
        [prompt_events, prompt_seconds],
    )


def sampling_fields() -> list[gr.components.Component]:
    """Samples, events, at least, temperature, top-p, top-k, seed (the handler's order)."""
    defaults = SamplingConfig()
    with gr.Accordion("Sampling", open=True):
        with gr.Row():
            events = gr.Slider(16, 2048, value=defaults.events, step=16, label="Events to generate")
            min_events = gr.Slider(0, 2048, value=defaults.min_events, step=16, label="At least", info="events before the piece may end")
        with gr.Row():
            temperature = gr.Slider(0, 2, value=defaults.temperature, step=0.05, label="Temperature", info="0: always the likeliest token")
            top_p = gr.Slider(0.05, 1, value=defaults.top_p, step=0.01, label="Top-p", info="1: off")
        with gr.Row():
            top_k = gr.Slider(0, 128, value=defaults.top_k, step=1, label="Top-k", info="0: off")
            num_samples = gr.Slider(1, MAX_SAMPLES, value=defaults.num_samples, step=1, label="Samples", info="generated together")
        seed = gr.Number(defaults.seed, precision=0, label="Seed", info="sample i uses seed + i, so any one can be regenerated alone")
    return [num_samples, events, min_events, temperature, top_p, top_k, seed]


def result_slots(button_label: str = "Continue from this sample") -> tuple[list[list[gr.components.Component]], list[gr.Button]]:
    """MAX_SAMPLES hidden slots, each: group, title, audio, piano roll, downloads; and their buttons (Continue)."""
    slots, continue_buttons = [], []
    for _ in range(MAX_SAMPLES):
        with gr.Group(visible=False) as group:
            with gr.Row(equal_height=True):
                title = gr.Markdown(padding=True)
                continue_buttons.append(gr.Button(button_label, size="sm", scale=0, min_width=200))
            audio = gr.Audio(type="filepath", interactive=False, show_label=False, buttons=["download"])
            roll = gr.Image(type="filepath", interactive=False, show_label=False, buttons=["fullscreen"])
            downloads = gr.File(file_count="multiple", interactive=False, label="Download MIDI and WAV")
        slots.append([group, title, audio, roll, downloads])
    return slots, continue_buttons


def build_app(settings: AppSettings) -> gr.Blocks:
    """The page, ready to ``launch``; models load on the first Generate that needs them."""
    from midilm.runtime import resolve_device

    models = ModelCache(resolve_device(settings.device))
    choices = checkpoint_choices(settings.runs_dir, settings.checkpoint)
    with gr.Blocks(title="midilm", analytics_enabled=False, delete_cache=(3600, 86400)) as app:
        gr.Markdown(INTRO)
        mode = gr.State(CONTROLS_TAB)
        midi_paths = gr.State([])
        with gr.Row():
            with gr.Column(scale=2, min_width=360):
                checkpoint = gr.Dropdown(
                    choices,
                    value=choices[0][1] if choices else None,
                    allow_custom_value=True,
                    label="Checkpoint",
                    info=checkpoint_hint(settings.runs_dir, found=bool(choices)),
                )
                rescan = gr.Button(f"Rescan {settings.runs_dir}/", size="sm")
                start = start_fields()
                sampling = sampling_fields()
                lock_values = lock_fields()
                generate_button = gr.Button("Generate", variant="primary")
            with gr.Column(scale=3, min_width=420):
                gr.Markdown(RESULTS)
                status = gr.Markdown(elem_id="status", min_height=60)  # room for the progress bar
                slots, continue_buttons = result_slots()

        rescan.click(lambda: rescanned(settings), outputs=checkpoint)
        start.controls_tab.select(lambda: CONTROLS_TAB, outputs=mode)
        start.prompt_tab.select(lambda: PROMPT_TAB, outputs=mode)
        start.prompt_file.upload(on_upload, inputs=start.prompt_file, outputs=[start.prompt_file, start.prompt_info])
        start.prompt_file.clear(lambda: "", outputs=start.prompt_info)
        generate_button.click(
            make_generate(models, settings.out_dir),
            inputs=[checkpoint, mode, start.prompt_file, *start.prompt_cut, *start.controls, *sampling, *lock_values],
            outputs=[status, midi_paths, *(component for slot in slots for component in slot)],
            show_progress_on=status,
        )
        for i, button in enumerate(continue_buttons):
            button.click(
                lambda paths, index=i: continue_from(paths, index),
                inputs=midi_paths,
                outputs=[start.prompt_file, *start.prompt_cut, start.prompt_info, start.tabs, mode],
            )
    return with_around_tab(app, models, settings)


def launch(app: gr.Blocks, settings: AppSettings, *, host: str, port: int, share: bool) -> str:
    """Serve the page without blocking; returns the URL to open (the public one with ``share``)."""
    try:
        _, local_url, share_url = app.launch(
            server_name=host,
            server_port=port,
            share=share,
            prevent_thread_lock=True,
            quiet=True,
            allowed_paths=[str(settings.out_dir)],
            max_file_size=forms.MAX_PROMPT_BYTES,
            footer_links=["gradio"],
        )
    except OSError as exc:
        from midilm.errors import ConfigError

        raise ConfigError(
            f"cannot listen on {host}:{port}: the port is in use or the address is not this machine's (choose another --port or --host)"
        ) from exc
    return share_url or local_url
