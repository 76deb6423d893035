"""Evaluation samples: seeds that do not depend on the batch size, and the syntax error rate."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from midilm import vocab
from midilm.evaluate.samples import generate_samples, syntax_errors
from midilm.model import build_model, preset_config
from midilm.sample import generate
from midilm.sample.config import SamplingConfig

BOS_ROW = [vocab.BOS] + [vocab.PAD] * 7
EOS_ROW = [vocab.EOS] + [vocab.PAD] * 7


def note_row(pitch: int) -> np.ndarray:
    return vocab.encode_event("note", time1=1, time2=0, track=0, channel=0, pitch=pitch, velocity=80, duration=8)


def test_syntax_errors_count_generated_rows_only():
    good = np.stack([note_row(60 + i) for i in range(8)])
    bad = good.copy()
    bad[3, 5] = vocab.PARAM_OFFSET["velocity"] + 1  # a velocity id in the pitch slot
    bad[6, 7] = vocab.PAD  # a note without its duration
    samples = [
        np.concatenate([[BOS_ROW], bad, [EOS_ROW]]).astype(vocab.TOKEN_DTYPE),  # 8 rows judged, 2 invalid
        np.concatenate([[BOS_ROW], good]).astype(vocab.TOKEN_DTYPE),  # no EOS: 8 rows judged, 0 invalid
    ]
    assert syntax_errors(samples) == {"rows": 16, "invalid_rows": 2, "error_rate": 2 / 16}


def test_a_sample_that_ended_at_once_has_no_rows():
    result = syntax_errors([np.array([BOS_ROW, EOS_ROW], dtype=vocab.TOKEN_DTYPE)])
    assert result["rows"] == 0 and np.isnan(result["error_rate"])


@pytest.fixture(scope="module")
def tiny_gpt() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(preset_config("gpt", "tiny")).eval()


def test_generated_samples_are_seeded_by_their_position_not_their_batch(tiny_gpt):
    sampling = SamplingConfig(events=6, seed=5)
    samples = generate_samples(tiny_gpt, 3, sampling, batch_size=2)
    assert len(samples) == 3 and all(s[0, 0] == vocab.BOS for s in samples)
    alone = generate(tiny_gpt, dataclasses.replace(sampling, num_samples=1, seed=7))[0]
    np.testing.assert_array_equal(samples[2], alone)
    assert syntax_errors(samples)["invalid_rows"] == 0
