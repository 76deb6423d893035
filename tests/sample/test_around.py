"""Accompaniment and infilling for every architecture, with random weights and trained tiny models: kept events
verbatim, new notes only on the voices written, the span alone rewritten, every output decodable."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from midilm import anticipation, vocab
from midilm.errors import ConfigError
from midilm.model import build_model, preset_config
from midilm.model.registry import ARCHS
from midilm.sample import SamplingConfig
from midilm.sample.accompany import accompaniment_task, accompany
from midilm.sample.around import AroundModel, write_around
from midilm.sample.infill import infill
from midilm.sample.sampler import EventSampler
from midilm.sample.song import Song
from midilm.tokenizer import detokenize, tokenize
from midilm.tokenizer.grammar import invalid_rows

SONG = Path(__file__).parents[1] / "data" / "golden" / "bach_bwv10.7.mid"
MELODY = SONG.with_name("folk_essen_altdeu10_1.mid")
NOTE = vocab.EVENT_ID["note"]


def tiny(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(preset_config(arch, "tiny")).eval()


def wild(samples: int = 3, seed: int = 0) -> SamplingConfig:
    return SamplingConfig(num_samples=samples, temperature=1.3, top_p=1.0, top_k=0, seed=seed)


def by_track(tokens: np.ndarray) -> dict[int, list[tuple]]:
    """Every decoded event by the token track number it came from."""
    events = tokens[(tokens[:, 0] >= vocab.FIRST_EVENT_ID) & (tokens[:, 0] <= vocab.LAST_EVENT_ID)]
    used = sorted(set((events[:, 3].astype(int) - vocab.PARAM_OFFSET["track"]).tolist()))
    return {t: sorted(map(tuple, part)) for t, part in zip(used, detokenize(tokens)[1:], strict=True)}


def value(rows: np.ndarray, param: str) -> np.ndarray:
    return rows[:, 1 + vocab.EVENT_PARAMS["note"].index(param)].astype(np.int64) - vocab.PARAM_OFFSET[param]


def check_accompaniment(result, source: dict[int, list[tuple]], kept_tracks: set[int], song_end: int) -> None:
    voices = {v.channel: v for v in result.plan.voices}
    for tokens, kept in zip(result.samples, result.kept_rows, strict=True):
        assert not invalid_rows(tokens).any() and tokens[0, 0] == vocab.BOS and tokens[-1, 0] == vocab.EOS
        out = by_track(tokens)
        for track in kept_tracks | {0}:
            assert out[track] == source[track]  # every note, tempo, time and key signature, as the input's round trip
        new = tokens[~kept & (tokens[:, 0] == NOTE)]
        channels, tracks = value(new, "channel"), value(new, "track")
        assert set(channels.tolist()) == set(voices)  # every added instrument plays, and only they do
        assert all(voices[c].track == t for c, t in zip(channels.tolist(), tracks.tolist(), strict=True))
        assert Song.from_tokens(tokens).end() == song_end  # as long as the input


@pytest.mark.parametrize("arch", ARCHS)
def test_accompaniment_keeps_tracks_verbatim_with_random_weights(arch: str) -> None:
    source = by_track(tokenize(SONG).tokens)
    config = replace(wild(), disable_channels="2,3", control_change=False)  # 1-based: channels 1 and 2 inside
    result = accompany(SONG, keep="1,3", add="cello,flute", model=tiny(arch), config=config)
    assert result.mode == "interleave"
    check_accompaniment(result, source, {1, 3}, Song.load(SONG).end())
    assert {v.track for v in result.plan.voices} == {2, 4}  # the numbers the kept voices leave free
    assert {v.channel for v in result.plan.voices} == {3, 4}  # the first channels neither kept nor disabled
    for tokens, kept in zip(result.samples, result.kept_rows, strict=True):
        assert not (tokens[~kept, 0] == vocab.EVENT_ID["control_change"]).any()
    with pytest.raises(ConfigError, match="allow-instruments does not allow"):
        accompany(SONG, keep="1", add="cello", model=tiny(arch), config=replace(wild(), allow_instruments="piano"))


def test_accompaniment_with_a_trained_plain_and_an_anticipation_model(tiny_gpt_run: Path, tiny_anticipation_run: Path) -> None:
    source = by_track(tokenize(SONG).tokens)
    for run, mode in ((tiny_gpt_run, "interleave"), (tiny_anticipation_run, "anticipate")):
        result = accompany(SONG, keep="2", add="piano", drums="standard", model=run, config=wild(2))
        assert result.mode == mode
        check_accompaniment(result, source, {2}, Song.load(SONG).end())
        assert all((t < vocab.VOCAB_SIZE).all() for t in result.samples)  # anticipated rows never reach the output


@pytest.mark.parametrize("arch", ARCHS)
def test_infill_rewrites_the_span_alone(arch: str) -> None:
    check_infill(tiny(arch), "auto")


def test_infill_with_an_anticipation_model_in_both_modes(tiny_anticipation_run: Path) -> None:
    for mode in ("anticipate", "interleave"):
        check_infill(tiny_anticipation_run, mode)


def check_infill(model, mode: str) -> None:
    song = Song.load(SONG)
    first, last = song.steps_at(3, "bars", "start"), song.steps_at(6, "bars", "end")
    source = by_track(tokenize(SONG).tokens)
    for seed in range(3):
        result = infill(SONG, 3, 6, tracks="2,3", unit="bars", model=model, config=wild(2, seed), mode=mode)
        for tokens, kept in zip(result.samples, result.kept_rows, strict=True):
            assert not invalid_rows(tokens).any()
            out = by_track(tokens)
            for track in (0, 1, 4):
                assert out[track] == source[track]  # tracks not listed: as they were
            for track in (2, 3):
                outside = [e for e in source[track] if not first * 30 <= e[1] < last * 30]  # 30 ticks per 1/16 beat
                assert [e for e in out[track] if not first * 30 <= e[1] < last * 30] == outside
            new = tokens[~kept & (tokens[:, 0] == NOTE)]
            onsets = anticipation.stream_onsets(tokens)[~kept & (tokens[:, 0] == NOTE)]
            assert ((onsets >= first) & (onsets < last)).all() and (onsets + value(new, "duration") <= last).all()
            assert set(value(new, "track").tolist()) <= {2, 3}


def test_added_parts_may_spread_over_a_four_voice_texture() -> None:
    """A melody alone leaves the model three tracks (not one per added instrument), as a chorale's dropped voices do."""
    melody = Song.load(MELODY)
    assert accompaniment_task(melody, "1", "piano,bass").voice_tracks == {2, 3, 4}
    chorale = Song.load(SONG)
    assert accompaniment_task(chorale, "1", "piano").voice_tracks == {2, 3, 4}
    assert accompaniment_task(chorale, "1,2,3", "cello,bass").voice_tracks == {4, 5}
    assert accompaniment_task(chorale, "all", "bass").voice_tracks == {5}


def test_kept_events_are_placed_when_their_time_comes() -> None:
    """In the decoding stream itself (before the output is merged), time never goes back and kept rows come in order."""
    model = tiny("gpt")
    around = AroundModel.of(model)
    task = accompaniment_task(Song.load(SONG), "1", "piano")
    start, stream = task.start("interleave", 0)
    timeline = task.timeline(task_locks(), 4, around, "interleave", start, stream)
    sampler = EventSampler(
        model, SamplingConfig(num_samples=4, events=150, seed=3, temperature=1.3, top_k=0, top_p=1.0), start, constraints=[timeline]
    )
    list(sampler.steps())
    in_prompt = len(start) - 1 - len(task.new_rows)  # the kept rows at time 0 start the piece
    for b, sample in enumerate(sampler.result().samples):
        onsets = anticipation.stream_onsets(sample)
        events = (sample[:, 0] >= vocab.FIRST_EVENT_ID) & (sample[:, 0] <= vocab.LAST_EVENT_ID)
        assert (np.diff(onsets[events]) >= 0).all()
        placed = [tuple(r[3:]) for r in sample[len(start) :] if any(np.array_equal(r[3:], k[3:]) for k in stream.rows)]
        assert placed == [tuple(k[3:]) for k in stream.rows[in_prompt : in_prompt + len(placed)]]
        assert timeline.next_kept[b] == in_prompt + len(placed) > in_prompt


def task_locks():
    from midilm.sample.rules import LockRules

    return LockRules()


def test_song_times_tracks_and_refusals() -> None:
    song = Song.load(SONG)
    assert song.steps_at(1, "bars", "start") == 0 and song.steps_at(3, "bars", "start") == 2 * 64  # 4/4
    bpm = 120  # bwv10.7 has no tempo event but the default, 120 bpm: 8 sixteenths a second
    assert song.steps_at(2.5, "seconds", "start") == round(2.5 * bpm / 60 * 16)
    assert [t.track for t in song.tracks() if t.notes] == [1, 2, 3, 4]
    with pytest.raises(ConfigError, match="has no track 9"):
        accompaniment_task(song, "9", "piano")
    with pytest.raises(ConfigError, match="name at least one instrument"):
        accompaniment_task(song, "1", "")
    with pytest.raises(ConfigError, match="span to rewrite is empty"):
        infill(SONG, 5, 5, model=tiny("gpt"))
    with pytest.raises(ConfigError, match="not trained with --anticipation"):
        write_around(AroundModel.of(tiny("gpt")), wild(), accompaniment_task(song, "1", "piano"), mode="anticipate")
