"""The sampler's constraint hooks: extra masks are obeyed at every slot, forced rows are written as given."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from midilm import vocab
from midilm.model import build_model, preset_config
from midilm.sample import SamplingConfig
from midilm.sample.sampler import EventSampler, start_rows

NOTE = vocab.EVENT_NAMES.index("note")
PITCH_SLOT = 1 + vocab.EVENT_PARAMS["note"].index("pitch")


class LowPitchesOnly:
    """Notes below middle C, through the pitch slot's mask."""

    def __init__(self) -> None:
        self.mask = np.zeros(vocab.VOCAB_SIZE, dtype=np.float32)
        self.mask[vocab.PARAM_OFFSET["pitch"] + 60 : vocab.PARAM_OFFSET["pitch"] + 128] = -np.inf

    def slot_mask(self, slot: int, row: np.ndarray, event_index: np.ndarray) -> np.ndarray | None:
        if slot != PITCH_SLOT:
            return None
        return np.where((event_index == NOTE)[:, None], self.mask, np.float32(0))

    def forced_rows(self):
        return None

    def observe(self, rows: np.ndarray, active: np.ndarray) -> None:
        pass


class ForceAtStep:
    """Sample 0 writes a given row at one event step."""

    def __init__(self, step: int, row: np.ndarray, batch: int) -> None:
        self.step, self.row, self.batch, self.seen = step, row, batch, 0

    def slot_mask(self, slot, row, event_index):
        return None

    def forced_rows(self):
        if self.seen != self.step:
            return None
        which = np.zeros(self.batch, dtype=bool)
        which[0] = True
        return which, np.repeat(self.row[None], self.batch, axis=0)

    def observe(self, rows: np.ndarray, active: np.ndarray) -> None:
        self.seen += 1


@pytest.mark.parametrize("arch", ["gpt", "hier"])
def test_masks_and_forced_rows_are_obeyed(arch: str) -> None:
    torch.manual_seed(0)
    model = build_model(preset_config(arch, "tiny")).eval()
    forced = vocab.encode_event("note", time1=1, time2=0, track=1, channel=0, pitch=100, velocity=64, duration=4)
    config = SamplingConfig(num_samples=3, events=30, min_events=30, temperature=1.5, top_p=1.0, top_k=0, seed=5)
    sampler = EventSampler(model, config, start_rows(), constraints=[LowPitchesOnly(), ForceAtStep(4, forced, 3)])
    steps = list(sampler.steps())
    assert len(steps) == 30
    samples = sampler.result().samples
    np.testing.assert_array_equal(samples[0][1 + 4], forced)  # after the BOS row
    for b, sample in enumerate(samples):
        notes = sample[1:][sample[1:, 0] == vocab.EVENT_ID["note"]]
        pitches = notes[:, PITCH_SLOT] - vocab.PARAM_OFFSET["pitch"]
        sampled = pitches if b else np.delete(pitches, np.flatnonzero(pitches == 100)[:1])
        assert len(notes) and (sampled < 60).all()
