"""Generation: grammar by construction, prompts verbatim, controls, seeds, limits, long form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from midilm import vocab
from midilm.errors import ConfigError
from midilm.model import build_model, preset_config
from midilm.sample import Controls, SamplingConfig, sample_events, start_rows
from midilm.sample.clock import onset_seconds
from midilm.sample.controls import parse_key, parse_time_signature
from midilm.tokenizer import detokenize, tokens_to_midi
from midilm.tokenizer.grammar import invalid_rows

ARCHS = ("seed", "gpt", "hier")


def tiny(arch: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    config = preset_config(arch, "tiny")
    for key, value in overrides.items():
        setattr(config, key, value)
    return build_model(config).eval()


@pytest.mark.parametrize("arch", ARCHS)
def test_random_weights_give_only_decodable_events(arch: str) -> None:
    config = SamplingConfig(num_samples=4, events=48, min_events=48, temperature=1.5, top_p=1.0, top_k=0, seed=3)
    result = sample_events(tiny(arch), config, start_rows())
    assert result.generated_events == [48] * 4
    for sample in result.samples:
        assert not invalid_rows(sample).any()
        assert sample[0, 0] == vocab.BOS
        assert len(tokens_to_midi(sample)) > 14  # decodes to a real file


@pytest.mark.parametrize("arch", ARCHS)
def test_same_seed_same_music_other_seed_other_music(arch: str) -> None:
    model = tiny(arch)
    config = SamplingConfig(num_samples=2, events=20, min_events=20, seed=11)
    first = sample_events(model, config, start_rows()).samples
    again = sample_events(model, config, start_rows()).samples
    other = sample_events(model, SamplingConfig(num_samples=2, events=20, min_events=20, seed=12), start_rows()).samples
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_prompt_rows_are_kept_verbatim(golden_dir) -> None:
    prompt = np.load(golden_dir / "bach_bwv10.7.opt.npy")[:30]
    result = sample_events(tiny("gpt"), SamplingConfig(num_samples=3, events=10, min_events=10), start_rows(prompt))
    for sample in result.samples:
        np.testing.assert_array_equal(sample[:30], prompt)
        assert len(sample) == 40


def test_min_events_holds_and_eos_ends_early() -> None:
    model = tiny("seed")
    with torch.no_grad():  # make the end token overwhelmingly likely (seed's output layer has a bias)
        model.lm_head.bias[vocab.EOS] = 50.0
    result = sample_events(model, SamplingConfig(num_samples=3, events=40, min_events=7), start_rows())
    assert result.stop_reason == "eos"
    assert result.generated_events == [7, 7, 7]
    for sample in result.samples:
        assert sample[-1, 0] == vocab.EOS and (sample[1:-1, 0] != vocab.EOS).all()


def test_controls_are_written_as_prompt_events_and_reach_the_midi() -> None:
    controls = Controls(instruments="violin,Acoustic Grand Piano", drums="jazz", bpm=96, time_signature="3/4", key="Bb")
    rows = start_rows(controls=controls)
    result = sample_events(tiny("gpt"), SamplingConfig(events=12, min_events=12), rows)
    score = detokenize(result.samples[0])
    events = [e for track in score[1:] for e in track]
    patches = {(e[2], e[3]) for e in events if e[0] == "patch_change"}
    assert {(0, 40), (1, 0), (9, 32)} <= patches
    assert ["set_tempo", 0, 625000] in [e[:3] for e in events if e[0] == "set_tempo"]
    assert ("time_signature", 3, 4) in {(e[0], e[2], 2 ** e[3]) for e in events if e[0] == "time_signature"}
    assert ("key_signature", -2, 0) in {(e[0], e[2], e[3]) for e in events if e[0] == "key_signature"}


@pytest.mark.parametrize(
    ("text", "expected"), [("C", (0, 0)), ("Am", (0, 1)), ("F#", (6, 0)), ("Eb minor", (-6, 1)), ("B♭", (-2, 0)), ("C#m", (4, 1))]
)
def test_key_names(text: str, expected: tuple[int, int]) -> None:
    assert parse_key(text) == expected


@pytest.mark.parametrize("bad", ["H", "G##", "Fbm", "7/3", ""])
def test_bad_controls_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_key(bad) if "/" not in bad else parse_time_signature(bad)


def test_prompt_and_controls_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="either a prompt or controls"):
        start_rows(np.stack([np.eye(1, 8, dtype=np.uint16)[0]]), Controls(bpm=100))


@pytest.mark.parametrize("arch", ARCHS)
def test_long_form_slides_past_the_context(arch: str) -> None:
    model = tiny(arch, context_events=8)
    result = sample_events(model, SamplingConfig(num_samples=2, events=30, min_events=30), start_rows())
    assert result.generated_events == [30, 30]
    assert all(not invalid_rows(s).any() for s in result.samples)


def test_seconds_limit_stops_once_enough_music_follows_the_prompt() -> None:
    controls = Controls(bpm=120)
    result = sample_events(tiny("gpt"), SamplingConfig(events=5000, min_events=5000, seconds=4.0, seed=2), start_rows(controls=controls))
    assert result.stop_reason == "seconds"
    onsets = onset_seconds(result.samples[0])
    assert onsets[-1] >= 4.0 > onsets[-2]


def test_onset_seconds_follows_tempo_changes() -> None:
    def row(name: str, **values: int) -> np.ndarray:
        return vocab.encode_event(name, **values)

    rows = np.stack(
        [
            start_rows()[0],
            row("set_tempo", time1=0, time2=0, track=0, bpm=60),
            row("note", time1=2, time2=8, track=1, channel=0, pitch=60, velocity=80, duration=4),  # 2.5 beats at 60 bpm
            row("set_tempo", time1=0, time2=8, track=0, bpm=120),
            row("note", time1=1, time2=0, track=1, channel=0, pitch=62, velocity=80, duration=4),  # +0.5 beat at 120 bpm
        ]
    )
    np.testing.assert_allclose(onset_seconds(rows), [0, 0, 2.5, 2.5, 2.75])


@pytest.mark.parametrize("threads", [1, 3])
def test_eager_sampling_runs_on_its_own_cpu_threads_and_restores_the_setting(threads: int) -> None:
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    seen: list[int] = []
    try:
        config = SamplingConfig(events=3, min_events=3, threads=threads, decoder="eager")
        sample_events(tiny("gpt"), config, start_rows(), on_event=lambda n: seen.append(torch.get_num_threads()))
        assert seen == [threads] * 3
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
