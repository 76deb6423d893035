"""Page values -> settings, and the checks an uploaded prompt must pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from midilm.app import forms
from midilm.errors import ConfigError, MidiFileError
from midilm.sample.controls import control_events, drum_kit_program, parse_key, parse_time_signature
from midilm.tokenizer import score_to_midi

SAMPLING = {
    "num_samples": 2.0,
    "events": 64.0,
    "min_events": 0.0,
    "seconds": 120.0,
    "temperature": 0.9,
    "top_p": 0.94,
    "top_k": 20.0,
    "seed": 7.0,
}


def test_a_midi_prompt_is_described(prompt_path: Path) -> None:
    assert forms.describe_prompt(prompt_path) == "**bach_bwv1.6.mid**: 499 events, 491 notes, 6 tracks, 64.0 s"


def test_a_file_that_is_not_midi_is_rejected_by_its_own_name(tmp_path: Path) -> None:
    upload = tmp_path / "upload-cache" / "notes.mid"
    upload.parent.mkdir()
    upload.write_text("these are my notes, not a MIDI file")
    with pytest.raises(MidiFileError) as caught:
        forms.check_prompt(upload)
    message = str(caught.value)
    assert message.startswith("notes.mid: not a MIDI file")
    assert str(tmp_path) not in message  # the server's upload folder is not shown


def test_a_file_over_the_size_limit_is_rejected_before_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.mid"
    big.write_bytes(b"MThd" + bytes(forms.MAX_PROMPT_BYTES))
    with pytest.raises(MidiFileError, match=r"^big\.mid: 5\.0 MB is larger than the 5 MB allowed"):
        forms.check_prompt(big)


def test_a_midi_file_without_events_is_rejected(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mid"
    empty.write_bytes(score_to_midi([480, []]))
    with pytest.raises(MidiFileError, match="empty.mid: holds no notes"):
        forms.check_prompt(empty)


def test_sampling_fields_become_a_checked_config() -> None:
    config = forms.sampling_config(**SAMPLING)
    assert (config.num_samples, config.events, config.top_k, config.seed, config.seconds) == (2, 64, 20, 7, 120.0)
    assert isinstance(config.num_samples, int) and config.temperature == 0.9


def test_an_empty_seed_draws_a_fresh_one() -> None:
    seeds = {forms.sampling_config(**{**SAMPLING, "seed": None}).seed for _ in range(5)}
    assert len(seeds) > 1


def test_the_prompt_tab_needs_an_accepted_upload(prompt_path: Path) -> None:
    assert forms.chosen_prompt(False, str(prompt_path)) is None  # the Controls tab is shown
    assert forms.chosen_prompt(True, str(prompt_path)) == prompt_path
    with pytest.raises(ConfigError, match="Upload a prompt MIDI file first"):
        forms.chosen_prompt(True, None)  # none uploaded, or the upload was rejected (the page then holds none)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("seed", 1.5, "seed: enter a whole number"),
        ("num_samples", 1.5, "number of samples: enter a whole number"),
        ("temperature", float("nan"), "temperature: enter a number"),
        ("min_events", 65.0, "min_events must be in 0..events"),
        ("top_p", 0.0, "top_p must be in"),
    ],
)
def test_bad_sampling_fields_are_named(field: str, value: float | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        forms.sampling_config(**{**SAMPLING, field: value})


def test_control_fields_become_controls_and_their_events() -> None:
    chosen = forms.controls(programs=[0, 40], drums="jazz", bpm=96.0, time_signature="3/4", key="D minor")
    assert chosen.instruments == "0,40" and chosen.bpm == 96
    assert len(control_events(chosen)) == 6  # time and key signature, tempo, two instruments, drums
    nothing = forms.controls(programs=None, drums=None, bpm=None, time_signature=None, key=None)
    assert not nothing.any()


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"key": "H major"}, "key 'H major'"), ({"time_signature": "4/5"}, "time signature '4/5'"), ({"bpm": 500.0}, "bpm 500")],
)
def test_bad_control_fields_are_named(fields: dict, message: str) -> None:
    values = {"programs": [], "drums": "", "bpm": 0.0, "time_signature": "", "key": ""}
    with pytest.raises(ConfigError, match=message):
        forms.controls(**{**values, **fields})


def test_every_offered_choice_is_accepted() -> None:
    instruments = forms.instrument_choices()
    assert len(instruments) == 128 and instruments[40] == ("Violin", 40)
    kits = forms.drum_kit_choices()
    assert kits[0] == ("none", "") and len({drum_kit_program(value) for _, value in kits[1:]}) == len(kits) - 1
    assert len({parse_key(key) for key in forms.KEY_CHOICES}) == 30
    assert all(parse_time_signature(signature) for signature in forms.TIME_SIGNATURE_CHOICES)


def test_prompt_cut_by_events_or_seconds_not_both() -> None:
    assert forms.prompt_cut(events=32.0, seconds=0.0) == (32, 0.0)
    assert forms.prompt_cut(events=None, seconds=None) == (0, 0.0)
    with pytest.raises(ConfigError, match="not both"):
        forms.prompt_cut(events=32.0, seconds=4.0)
    with pytest.raises(ConfigError, match=">= 0"):
        forms.prompt_cut(events=-1.0, seconds=0.0)
