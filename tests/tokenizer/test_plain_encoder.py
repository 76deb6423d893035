"""The fast encoder (numpy tables, batches) against the plain per-event one
(:mod:`midilm.tokenizer.plain_encoder`): the same tokens, reports and errors on
real files, the reference's hand-made cases, fuzzed files and hand-built
scores, in both settings."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from midilm.errors import MidiFileError
from midilm.tokenizer import TokenizerOptions, read_score
from midilm.tokenizer.encoder import encode
from midilm.tokenizer.plain_encoder import plain_encode
from midilm.tokenizer.report import TokenizeReport
from midilm.tokenizer.score import score_from_list

DATA = Path(__file__).parents[1] / "data"
REAL_FILES = sorted((DATA / "golden").glob("*.mid")) + sorted((DATA / "tokenizer" / "cases").glob("*.mid"))
SETTINGS = [
    TokenizerOptions(),
    TokenizerOptions(optimise=False),
    TokenizerOptions(optimise=False, add_default_instr=True, remove_empty_channels=True),
    TokenizerOptions(remap_track_channel=True, add_default_instr=False, remove_empty_channels=False, cc_eps=1, tempo_eps=0),
]


def assert_same(score, options: TokenizerOptions) -> None:
    fast_report, plain_report = TokenizeReport(source="x"), TokenizeReport(source="x")
    try:
        fast = encode(score, options, fast_report)
    except MidiFileError as error:
        with pytest.raises(MidiFileError) as plain_error:
            plain_encode(score, options, plain_report)
        assert str(plain_error.value) == str(error)
        return
    plain = plain_encode(score, options, plain_report)
    assert plain.dtype == fast.dtype
    np.testing.assert_array_equal(plain, fast)
    assert plain_report.to_dict() == fast_report.to_dict()


@pytest.mark.parametrize("options", SETTINGS, ids=lambda o: str(sorted(o.spec().items()))[:60])
def test_real_files(options):
    for path in REAL_FILES:
        try:
            score = read_score(path)
        except MidiFileError:
            continue
        assert_same(score, options)


def test_fuzzed_files(midi):
    """Seeded random files (notes that overlap, duplicates, corrupt bytes,
    meta events, many channels and tracks) and mutations of real files."""
    rng = np.random.default_rng(11)
    files = [
        midi.smf(*(midi.random_track(rng) for _ in range(int(rng.integers(1, 6)))), division=int(rng.choice([96, 480, 7])))
        for _ in range(200)
    ]
    mutate = random.Random(3)
    for _ in range(200):
        data = bytearray(mutate.choice([p for p in REAL_FILES if p.stat().st_size > 30]).read_bytes())
        for _ in range(mutate.randint(1, 6)):
            data[mutate.randrange(14, len(data))] = mutate.randrange(256)
        files.append(bytes(data))
    compared = 0
    for data in files:
        try:
            score = read_score(data)
        except MidiFileError:
            continue
        compared += 1
        for options in SETTINGS[:2]:
            assert_same(score, options)
    assert compared > 300


def test_hand_built_scores():
    """Scores no reader gives: negative times, tracks beyond 128, channels
    outside 0..15, huge values, and a score that is refused."""
    rng = random.Random(5)
    kinds = [
        lambda: ["note", rng.randint(-960, 48000), rng.randint(0, 480 * 140), rng.choice([0, 1, 9, 16, -1]), rng.randint(0, 129), 80],
        lambda: ["patch_change", rng.randint(-100, 9600), rng.choice([0, 1, 9, 17]), rng.randint(0, 3)],
        lambda: ["control_change", rng.randint(0, 9600), rng.choice([0, 9]), 7, rng.randint(0, 130)],
        lambda: ["set_tempo", rng.randint(0, 9600), rng.choice([0, 500_000, 400_000, 100])],
        lambda: ["time_signature", rng.randint(0, 9600), rng.randint(0, 17), rng.randint(0, 5), 24, 8],
        lambda: ["key_signature", rng.randint(0, 9600), rng.randint(-8, 8), rng.randint(0, 2)],
    ]
    for _ in range(150):
        tracks = [[rng.choice(kinds)() for _ in range(rng.randint(0, 30))] for _ in range(rng.choice([1, 3, 130]))]
        score = score_from_list([rng.choice([480, 96, 0]), *tracks])
        for options in SETTINGS[:2]:
            assert_same(score, options)
