"""The page: a Gradio Blocks layout wired to ``forms``, ``checkpoints`` and ``pieces``.

Handlers only translate between page values and those modules; a
``MidilmError`` becomes a message in the page's status line, with earlier
results left in place (never a traceback, in the page or the terminal).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gradio as gr

from midilm import vocab
from midilm.app import forms
from midilm.app.around import lock_fields, locks, with_around_tab
from midilm.app.checkpoints import ModelCache, adapter_choices, checkpoint_choices
from midilm.app.pieces import GenerationRequest, Piece, PieceRun
from midilm.errors import MidilmError
from midilm.sample.config import PIECE_SECONDS, Controls, SamplingConfig

MAX_SAMPLES = 8
"""Result slots on the page, so the most samples one press can ask for."""
MAX_PAGE_SECONDS = 600
"""Longest limit the page's slider offers, in seconds of new music."""
CONTROLS_TAB, PROMPT_TAB = "controls", "prompt"
MODEL_CHOOSES = "model's choice"
INTRO = """# midilm
Generate music with a MIDI language model. Start from **controls** (instruments, drums, tempo, metre, key; leave
them empty to let the model choose) or continue a **prompt MIDI** file, then press **Generate**."""
LIVE_EVERY_S = 1.0
"""How often the page redraws the piano rolls while sampling."""
RESULTS = (
    "### Samples\nEach sample's piano roll grows here while it is sampled (**Stop** keeps what exists), then it gets a player, "
    "MIDI and WAV downloads, and a button to continue from it."
)


@dataclass
class AppSettings:
    """Where the app finds models and writes samples."""

    out_dir: Path = field(metadata={"help": "folder that receives one subfolder of samples per press of Generate"})
    runs_dir: Path = field(default=Path("runs"), metadata={"help": "folder whose runs are offered as checkpoints"})
    checkpoint: str | None = field(default=None, metadata={"help": "checkpoint chosen when the page opens"})
    adapter: str | None = field(default=None, metadata={"help": "LoRA adapter chosen when the page opens"})
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


def problem(error: MidilmError) -> str:
    """Why Generate could not run, as the page shows it in the status line."""
    return f"⚠️ **Nothing generated.** {error}"


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


SLOT_FIELDS = 5
"""Components of one result slot: group, title, audio, piano roll, downloads."""


def result_updates(pieces: list[Piece], index: int) -> list[Any]:
    """The values of result slot ``index``: visibility, title, audio, piano roll, downloads."""
    if index >= len(pieces):
        return [gr.Group(visible=False), "", None, None, None]
    piece = pieces[index]
    title = f"### {piece.title}" + "".join(f"\n{note}" for note in piece.notes)
    audio = None if piece.audio is None else str(piece.audio)
    downloads = [str(piece.midi)] + ([audio] if audio else [])
    return [gr.Group(visible=True), title, audio, str(piece.piano_roll), downloads]


def live_updates(paths: list[Path], done: int, index: int) -> list[Any]:
    """Result slot ``index`` while sampling: its piano roll so far, no player or downloads yet."""
    if index >= len(paths):
        return [gr.Group(visible=False), "", None, None, None]
    return [gr.Group(visible=True), f"### Sample {index + 1} · sampling… {done} events so far", None, str(paths[index]), None]


class StopRequests:
    """Sessions whose Stop button was pressed while they sample (one flag per browser session)."""

    def __init__(self) -> None:
        self._asked: set[str] = set()

    def ask(self, session: str) -> None:
        self._asked.add(session)

    def take(self, session: str) -> bool:
        """Whether a stop was asked for, clearing the request."""
        if session in self._asked:
            self._asked.discard(session)
            return True
        return False


def make_generate(
    models: ModelCache, out_dir: Path, stops: StopRequests | None = None, live_every_s: float = LIVE_EVERY_S
) -> Callable[..., Iterator[list[Any]]]:
    """The Generate button's handler: page values in; while sampling, the piano
    rolls so far every ``live_every_s`` seconds; then status, result paths and slots."""
    stops = stops or StopRequests()

    def generate(
        checkpoint: str,
        adapter: str,
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
        seconds: float,
        seed: str,
        allowed: list[int],
        disabled: list[str],
        patch_change: bool,
        control_change: bool,
        max_polyphony: float,
        request: gr.Request | None = None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio finds the progress bar by this default)
    ) -> Iterator[list[Any]]:
        session = request.session_hash if request is not None else ""
        stops.take(session)  # a Stop pressed before this Generate does not count
        try:
            sampling = forms.sampling_config(
                num_samples=num_samples,
                events=events,
                min_events=min_events,
                seconds=seconds,
                temperature=temperature,
                top_p=top_p,
                top_k=top_k,
                seed=seed,
            )
            asked = GenerationRequest(
                checkpoint=checkpoint,
                adapter=adapter,
                sampling=replace(sampling, **locks(allowed, disabled, patch_change, control_change, max_polyphony)),
                controls=Controls(),
                prompt=forms.chosen_prompt(mode == PROMPT_TAB, prompt_path),
            )
            asked.sampling.validate()
            if asked.prompt is not None:
                asked.prompt_events, asked.prompt_seconds = forms.prompt_cut(events=prompt_events, seconds=prompt_seconds)
            else:
                asked.controls = forms.controls(programs=programs, drums=drums, bpm=bpm, time_signature=time_signature, key=key)
            run = PieceRun(models, asked)
            live_folder = Path(tempfile.mkdtemp(prefix="live-", dir=_made(out_dir)))
            shown = time.monotonic()
            for done in run.events():
                progress((done, asked.sampling.events), desc="generating", unit="events")
                if stops.take(session):
                    run.stop()
                    break
                if time.monotonic() - shown >= live_every_s:
                    paths = run.live_piano_rolls(live_folder)
                    slots = [value for i in range(MAX_SAMPLES) for value in live_updates(paths, done, i)]
                    yield [f"sampling: {done} of {asked.sampling.events} events", [], *slots]
                    shown = time.monotonic()
            generation = run.finish(out_dir, lambda done, total, unit: progress((done, total), desc="rendering", unit=unit))
        except MidilmError as exc:
            yield [problem(exc), *[gr.skip()] * (1 + SLOT_FIELDS * MAX_SAMPLES)]  # earlier results stay on the page
            return
        slots = [value for i in range(MAX_SAMPLES) for value in result_updates(generation.pieces, i)]
        yield [generation.summary, [str(p.midi) for p in generation.pieces], *slots]

    return generate


def _made(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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
    """Samples, events, at least, temperature, top-p, top-k, seconds, seed (the handler's order)."""
    defaults = SamplingConfig(seconds=PIECE_SECONDS)
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
        with gr.Row():
            seconds = gr.Slider(
                0, MAX_PAGE_SECONDS, value=defaults.seconds, step=10, label="At most (seconds)", info="of new music per piece; 0: no limit"
            )
            seed = gr.Textbox(
                "",
                label="Seed",
                placeholder="empty: a fresh one each time",
                info="sample i uses seed + i; each sample shows its seed, to make it again",
            )
    return [num_samples, events, min_events, temperature, top_p, top_k, seconds, seed]


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


def checkpoint_dropdown(runs_dir: Path, chosen: str | None) -> gr.Dropdown:
    """The checkpoint list (the chosen one first, the shipped model, the runs found), open to a typed path."""
    choices = checkpoint_choices(runs_dir, chosen)
    return gr.Dropdown(
        choices,
        value=choices[0][1] if choices else None,
        allow_custom_value=True,
        label="Checkpoint",
        info=checkpoint_hint(runs_dir, found=bool(choices)),
    )


def build_app(settings: AppSettings) -> gr.Blocks:
    """The page, ready to ``launch``; models load on the first Generate that needs them."""
    from midilm.runtime import resolve_device

    models = ModelCache(resolve_device(settings.device))
    with gr.Blocks(title="midilm", analytics_enabled=False, delete_cache=(3600, 86400)) as app:
        gr.Markdown(INTRO)
        mode = gr.State(CONTROLS_TAB)
        midi_paths = gr.State([])
        with gr.Row():
            with gr.Column(scale=2, min_width=360):
                checkpoint = checkpoint_dropdown(settings.runs_dir, settings.checkpoint)
                adapters = adapter_choices(settings.runs_dir, settings.adapter)
                adapter = gr.Dropdown(
                    adapters,
                    value=settings.adapter or "",
                    allow_custom_value=True,
                    label="LoRA adapter",
                    info="folded into the checkpoint above (its base); LoRA runs in the checkpoint list bring their own",
                )
                rescan = gr.Button(f"Rescan {settings.runs_dir}/", size="sm")
                start = start_fields()
                sampling = sampling_fields()
                lock_values = lock_fields()
                with gr.Row():
                    generate_button = gr.Button("Generate", variant="primary", scale=3)
                    stop_button = gr.Button("Stop", variant="stop", scale=1)
            with gr.Column(scale=4, min_width=420):
                gr.Markdown(RESULTS)
                status = gr.Markdown(elem_id="status", min_height=60)  # room for the progress bar
                slots, continue_buttons = result_slots()

        rescan.click(lambda: rescanned(settings), outputs=checkpoint)
        rescan.click(lambda: gr.Dropdown(choices=adapter_choices(settings.runs_dir, settings.adapter)), outputs=adapter)
        start.controls_tab.select(lambda: CONTROLS_TAB, outputs=mode)
        start.prompt_tab.select(lambda: PROMPT_TAB, outputs=mode)
        start.prompt_file.upload(on_upload, inputs=start.prompt_file, outputs=[start.prompt_file, start.prompt_info])
        start.prompt_file.clear(lambda: "", outputs=start.prompt_info)
        stops = StopRequests()

        def ask_stop(request: gr.Request) -> None:
            stops.ask(request.session_hash)

        stop_button.click(ask_stop, queue=False)
        generate_button.click(
            make_generate(models, settings.out_dir, stops),
            inputs=[checkpoint, adapter, mode, start.prompt_file, *start.prompt_cut, *start.controls, *sampling, *lock_values],
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
