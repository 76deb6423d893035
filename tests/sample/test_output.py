"""Writing samples: why each one stopped, where a prompt ends, and a WAV shorter than its piece."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np

from midilm import vocab
from midilm.sample.output import prompt_end_seconds, sample_stop_reasons, write_sample
from midilm.sample.sampler import EOS_ROW, GenerationResult
from midilm.tokenizer import score_to_midi, tokenize


def spaced_notes(count: int, beats_apart: int) -> np.ndarray:
    """Tokens of ``count`` one-beat notes, ``beats_apart`` beats apart, at 120 bpm."""
    notes = [["note", i * beats_apart * 480, 480, 0, 60 + i, 90] for i in range(count)]
    return tokenize(score_to_midi([480, [["set_tempo", 0, 500_000], *notes]])).tokens


def test_each_sample_says_whether_the_model_ended_it() -> None:
    start = np.zeros((1, vocab.EVENT_LEN), dtype=vocab.TOKEN_DTYPE)
    ended, cut = np.concatenate([start, EOS_ROW[None, :]]), start.copy()
    result = GenerationResult([ended, cut], start_events=1, generated_events=[0, 0], seconds=1.0, stop_reason="seconds")
    assert sample_stop_reasons(result) == ["eos", "seconds"]


def test_a_prompt_ends_where_the_first_generated_event_starts() -> None:
    tokens = spaced_notes(4, beats_apart=4)  # BOS, tempo, patch, notes at 0, 2, 4 and 6 s, EOS
    assert prompt_end_seconds(tokens, start_events=5) == 4.0  # rows 0-4 are the prompt (two notes); the next note starts at 4 s


def test_a_wav_cut_at_five_minutes_says_so(tmp_path: Path, recwarn) -> None:
    tokens = spaced_notes(12, beats_apart=60)  # a note every 30 s: 5.5 minutes
    files, notes = write_sample(tmp_path, "long", tokens, {"seed": 1}, audio=True, piano_roll=False)
    assert notes == ["long.wav: the WAV holds the first 300 s of this 330-second piece"]
    with wave.open(str(files["audio"])) as audio:
        assert 270 <= audio.getnframes() / audio.getframerate() <= 300  # up to the last note that starts before 5 minutes
    assert json.loads(files["record"].read_text())["audio_seconds"] == round(audio.getnframes() / audio.getframerate(), 3)
    assert not recwarn.list
