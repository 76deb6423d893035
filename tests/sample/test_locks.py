"""Locks hold over many seeds for every architecture: allowed instruments, disabled channels, no patch or control
changes, polyphony, and named instruments that all play while nothing else does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from midilm import vocab
from midilm.errors import ConfigError
from midilm.model import build_model, preset_config
from midilm.model.registry import ARCHS
from midilm.sample import Controls, SamplingConfig, generate, sample_events, start_rows
from midilm.sample.instruments import DRUM_KEYS, parse_allowed, parse_channels, pitch_range
from midilm.tokenizer.grammar import invalid_rows

NOTE, PATCH, CONTROL = (vocab.EVENT_ID[n] for n in ("note", "patch_change", "control_change"))
SEEDS = 12


def tiny(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(preset_config(arch, "tiny")).eval()


def param(rows: np.ndarray, name: str, param_name: str) -> np.ndarray:
    slot = 1 + vocab.EVENT_PARAMS[name].index(param_name)
    return rows[:, slot].astype(np.int64) - vocab.PARAM_OFFSET[param_name]


def wild(**settings) -> SamplingConfig:
    """Many samples at a high temperature: random weights try everything the masks leave."""
    return SamplingConfig(
        **{"num_samples": SEEDS, "events": 60, "min_events": 60, "temperature": 1.5, "top_p": 1.0, "top_k": 0, "seed": 7, **settings}
    )


def note_programs(sample: np.ndarray, first: int) -> list[tuple[int, int]]:
    """(channel, program) of every note from row ``first`` on, following the patch changes row by row."""
    program = np.zeros(16, dtype=np.int64)
    played = []
    for i, row in enumerate(sample):
        if row[0] == PATCH:
            program[param(row[None], "patch_change", "channel")[0]] = param(row[None], "patch_change", "patch")[0]
        elif row[0] == NOTE and i >= first:
            channel = int(param(row[None], "note", "channel")[0])
            played.append((channel, int(program[channel])))
    return played


def sounding_at_onsets(sample: np.ndarray) -> int:
    """The most pitched notes (drums aside) sounding when a note starts."""
    rows = sample[1:]
    onsets = np.cumsum(rows[:, 1].astype(np.int64) - vocab.PARAM_OFFSET["time1"]) * 16 + rows[:, 2] - vocab.PARAM_OFFSET["time2"]
    notes = (rows[:, 0] == NOTE) & (param(rows, "note", "channel") != 9)
    start, end = onsets[notes], onsets[notes] + param(rows[notes], "note", "duration")
    return max((int(((start <= s) & (end > s)).sum()) for s in start), default=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_config_locks_hold_over_many_seeds(arch: str) -> None:
    prompt = start_rows(controls=Controls(instruments="piano,violin,flute"))  # channels 0, 1, 2 set up
    config = wild(allow_instruments="violin,flute", disable_channels="3", control_change=False, max_polyphony=2)
    for sample in sample_events(tiny(arch), config, prompt).samples:
        assert not invalid_rows(sample).any()
        new = sample[len(prompt) :]
        played = note_programs(sample, len(prompt))
        assert played  # the locks leave the model music to write
        assert {program for _, program in played} <= {40, 73}  # violin and flute, never piano
        assert 2 not in {channel for channel, _ in played}  # channel 3 (1-based) is disabled
        patches = new[new[:, 0] == PATCH]
        assert set(param(patches, "patch_change", "patch").tolist()) <= {40, 73}
        assert 2 not in param(patches, "patch_change", "channel")
        assert not (new[:, 0] == CONTROL).any()
        assert sounding_at_onsets(sample) <= 2


@pytest.mark.parametrize("arch", ARCHS)
def test_no_patch_change_and_a_direct_sample_events_call_obey_the_config(arch: str) -> None:
    config = wild(patch_change=False, control_change=False)
    for sample in sample_events(tiny(arch), config, start_rows()).samples:
        assert not np.isin(sample[1:, 0], [PATCH, CONTROL]).any()


@pytest.mark.parametrize("arch", ARCHS)
def test_named_instruments_all_play_and_nothing_else_does(arch: str) -> None:
    controls = Controls(instruments="piano,violin", drums="standard")
    for sample in generate(tiny(arch), wild(events=150, min_events=150), controls=controls):
        notes = sample[sample[:, 0] == NOTE]
        channels = param(notes, "note", "channel")
        tracks = param(notes, "note", "track")
        assert set(channels.tolist()) == {0, 1, 9}  # every named instrument plays, on its own channel
        assert {c: set(tracks[channels == c].tolist()) for c in (0, 1, 9)} == {0: {1}, 1: {2}, 9: {3}}  # one track each
        patches = sample[sample[:, 0] == PATCH]
        assert {
            (c, p) for c, p in zip(param(patches, "patch_change", "channel"), param(patches, "patch_change", "patch"), strict=True)
        } <= {
            (0, 0),
            (1, 40),
            (9, 0),
        }
        pitches = param(notes, "note", "pitch")
        assert ((pitches[channels == 9] >= DRUM_KEYS[0]) & (pitches[channels == 9] <= DRUM_KEYS[1])).all()
        low, high = pitch_range(40, False)
        assert ((pitches[channels == 1] >= low) & (pitches[channels == 1] <= high)).all()
        counts = np.bincount(channels, minlength=10)[[0, 1, 9]]
        assert counts.min() >= np.floor(0.5 * len(notes) / 3) - 1  # each keeps about half a fair share


def test_the_opt_out_leaves_named_instruments_as_a_start_only() -> None:
    controls = Controls(instruments="violin", lock_instruments=False)
    samples = generate(tiny("hier"), wild(), controls=controls)
    channels = np.concatenate([param(s[s[:, 0] == NOTE], "note", "channel") for s in samples])
    assert len(set(channels.tolist())) > 1  # random weights wander off channel 2 when nothing holds them


def test_disabled_channels_move_named_instruments_and_conflicts_are_refused() -> None:
    samples = generate(tiny("gpt"), wild(disable_channels="1"), controls=Controls(instruments="piano"))
    for sample in samples:
        assert set(param(sample[sample[:, 0] == NOTE], "note", "channel").tolist()) == {1}
    with pytest.raises(ConfigError, match="allow-instruments does not allow"):
        generate(tiny("gpt"), wild(allow_instruments="piano"), controls=Controls(instruments="violin"))
    with pytest.raises(ConfigError, match="channel 10"):
        generate(tiny("gpt"), wild(disable_channels="10"), controls=Controls(drums="jazz"))


def test_lists_as_users_type_them() -> None:
    allowed = parse_allowed("Piano, 33, drums:jazz")
    assert allowed.programs == {0, 33} and allowed.drums and allowed.kits == {32}
    assert parse_allowed("drums").kits is None and parse_allowed("") is None
    assert parse_channels("10, 2") == {9, 1}
    with pytest.raises(ConfigError, match="not a MIDI channel"):
        parse_channels("17")
    with pytest.raises(ConfigError, match="max_polyphony"):
        SamplingConfig(max_polyphony=-1).validate()
