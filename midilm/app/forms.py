"""Page values -> midilm settings, and the checks an uploaded prompt must pass.

Nothing here imports gradio: the page's choices and checks are plain data and
functions, tested without a browser.
"""

from __future__ import annotations

import math
from pathlib import Path

from midilm.errors import ConfigError, MidiFileError
from midilm.sample.config import Controls, SamplingConfig, fresh_seed
from midilm.sample.controls import DRUM_KITS, control_events
from midilm.tokenizer import TokenSummary, summarize, tokenize

MAX_PROMPT_BYTES = 5 * 1024 * 1024
"""Largest prompt upload: a long multi-track song is a few hundred kB, so this
only turns away files that are not prompts (and caps the work one upload costs)."""

MIDI_SUFFIXES = [".mid", ".midi"]

TIME_SIGNATURE_CHOICES = ["4/4", "3/4", "2/4", "2/2", "6/8", "9/8", "12/8", "5/4", "7/8"]

_FIFTHS_MAJOR = ["C", "G", "D", "A", "E", "B", "F#", "C#", "F", "Bb", "Eb", "Ab", "Db", "Gb", "Cb"]
_FIFTHS_MINOR = ["A", "E", "B", "F#", "C#", "G#", "D#", "A#", "D", "G", "C", "F", "Bb", "Eb", "Ab"]
KEY_CHOICES = [f"{tonic} major" for tonic in _FIFTHS_MAJOR] + [f"{tonic} minor" for tonic in _FIFTHS_MINOR]
"""Every key a key signature can hold, in the circle-of-fifths order musicians read."""


def instrument_choices() -> list[tuple[str, int]]:
    """(General MIDI name, program) for the 128 melodic instruments."""
    import pretty_midi

    return [(name, program) for program, name in enumerate(pretty_midi.INSTRUMENT_MAP)]


def drum_kit_choices() -> list[tuple[str, str]]:
    """("none", "") then one name per drum-kit program (aliases left out)."""
    first_name: dict[int, str] = {}
    for name, program in DRUM_KITS.items():
        first_name.setdefault(program, name)
    return [("none", "")] + [(name, name) for name in first_name.values()]


def check_prompt(path: str | Path) -> TokenSummary:
    """What an uploaded prompt holds; raises ``MidiFileError`` naming the file
    (its own name, not the server's upload path) when it is too large, not
    MIDI, or has no events to continue."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_PROMPT_BYTES:
        raise MidiFileError(path.name, f"{size / 2**20:.1f} MB is larger than the {MAX_PROMPT_BYTES / 2**20:g} MB allowed for a prompt")
    try:
        tokens = tokenize(path).tokens
    except MidiFileError as exc:
        raise MidiFileError(path.name, exc.reason) from exc
    summary = summarize(tokens)
    if summary.events == 0:
        raise MidiFileError(path.name, "holds no notes or other events to continue")
    return summary


def describe_prompt(path: str | Path) -> str:
    """One line about an accepted prompt, for the page."""
    summary = check_prompt(path)
    return f"**{Path(path).name}**: {summary.events} events, {summary.notes} notes, {summary.tracks} tracks, {summary.seconds:.1f} s"


def _whole(value: float | None, name: str) -> int:
    if value is None or not math.isfinite(value) or value != int(value):
        raise ConfigError(f"{name}: enter a whole number (got {value!r})")
    return int(value)


def _real(value: float | None, name: str) -> float:
    if value is None or not math.isfinite(value):
        raise ConfigError(f"{name}: enter a number (got {value!r})")
    return float(value)


def _seed(value: str | float | None) -> int:
    """A seed typed in the page; empty draws a fresh one."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return fresh_seed()
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"seed: enter a whole number, or nothing for a fresh seed (got {text!r})") from None
    return fresh_seed() if value is None else _whole(value, "seed")


def sampling_config(
    *,
    num_samples: float,
    events: float,
    min_events: float,
    seconds: float,
    temperature: float,
    top_p: float,
    top_k: float,
    seed: str | float | None,
) -> SamplingConfig:
    """The page's sampling fields as a checked ``SamplingConfig``; an empty
    seed draws a fresh one (the page shows which)."""
    config = SamplingConfig(
        num_samples=_whole(num_samples, "number of samples"),
        events=_whole(events, "events"),
        min_events=_whole(min_events, "at least (events)"),
        seconds=_real(seconds, "at most (seconds)"),
        temperature=_real(temperature, "temperature"),
        top_p=_real(top_p, "top-p"),
        top_k=_whole(top_k, "top-k"),
        seed=_seed(seed),
    )
    config.validate()
    return config


def chosen_prompt(mode_is_prompt: bool, path: str | None) -> Path | None:
    """The uploaded prompt when the Prompt tab is shown; none uploaded (or one
    rejected) is a mistake the page explains."""
    if not mode_is_prompt:
        return None
    if not path:
        raise ConfigError("Upload a prompt MIDI file first (the last one was rejected, or none was given), or switch to the Controls tab.")
    check_prompt(path)
    return Path(path)


def controls(*, programs: list[int] | None, drums: str | None, bpm: float | None, time_signature: str | None, key: str | None) -> Controls:
    """The page's control fields as ``Controls``, checked now so that a typo
    shows before a model is loaded."""
    chosen = Controls(
        instruments=",".join(str(_whole(p, "instrument")) for p in programs or []),
        drums=(drums or "").strip(),
        bpm=_whole(bpm or 0, "tempo"),
        time_signature=(time_signature or "").strip(),
        key=(key or "").strip(),
    )
    control_events(chosen)
    return chosen


def prompt_cut(*, events: float | None, seconds: float | None) -> tuple[int, float]:
    """(events, seconds) of the prompt to keep; 0 means the whole file."""
    kept_events, kept_seconds = _whole(events or 0, "prompt events"), _real(seconds or 0, "prompt seconds")
    if kept_events < 0 or kept_seconds < 0:
        raise ConfigError("prompt events and seconds must be >= 0 (0 keeps the whole file)")
    if kept_events and kept_seconds:
        raise ConfigError("cut the prompt by events or by seconds, not both (set the other to 0)")
    return kept_events, kept_seconds
