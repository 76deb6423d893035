"""``midilm evaluate --task accompany|infill``: a case computed by hand, and the command on a tiny store."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from midilm import vocab
from midilm.cli import main
from midilm.evaluate.around import Case, accompany_cases, clipped_song, expressible, infill_cases, score_case
from midilm.model import build_model, preset_config
from midilm.model.registry import ARCHS
from midilm.sample.around import AroundModel
from midilm.sample.infill import infill_task
from midilm.sample.sampler import BOS_ROW, EOS_ROW
from midilm.sample.song import Song


def note(gap_beats: int, track: int, pitch: int) -> np.ndarray:
    return vocab.encode_event("note", time1=gap_beats, time2=0, track=track, channel=0, pitch=pitch, velocity=90, duration=16)


def two_voices() -> Song:
    """Two voices of two quarter notes each, tracks 1 and 2 on channel 1, no tempo or instrument events."""
    rows = [BOS_ROW, note(0, 1, 60), note(0, 2, 64), note(1, 1, 62), note(0, 2, 65), EOS_ROW]
    return Song.from_tokens(np.stack(rows), "two voices")


def uniform(arch: str) -> AroundModel:
    """A model whose logits are all zero: every token the masks allow is equally likely."""
    torch.manual_seed(0)
    model = build_model(preset_config(arch, "tiny")).eval()
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if "head" in name or "token_embed" in name or "token_emb" in name:
                weight.zero_()
    return AroundModel.of(model)


@pytest.mark.parametrize("arch", ARCHS)
def test_nats_of_a_held_out_voice_match_a_count_of_the_choices(arch: str) -> None:
    """Track 2 held out. Each drawn token costs log(allowed choices), except where the
    interleaving folds the probability of every later onset onto the next kept note."""
    around = uniform(arch)
    case = accompany_cases(two_voices())[1]
    assert int(case.held_out.sum()) == 2
    log = math.log
    # per held-out note: type (note, patch or control change) 3, beat 2 (limit: beat 2), step 16,
    # pitch 88 (piano's range), velocity 128, duration up to the end of the song (33, then 17)
    unconditional = 2 * log(3) + 2 * log(2) + 2 * log(16) + 2 * log(88) + 2 * log(128) + log(33) + log(17)
    interleave = (
        log(3) + log(128) + log(16) + log(88) + log(128) + log(33)  # beat 0 weighs 1 against 127 folded onto the kept note's beat
        + log(3) + log(128 / 127)  # reaching the kept note at beat 1: its type and time are drawn, the rest is forced
        + log(4) + log(128) + log(16) + log(88) + log(128) + log(17)  # now the piece may end: EOS, or any beat past its end
    )  # fmt: skip
    for procedure, expected in (("unconditional", unconditional), ("interleave", interleave)):
        scored = score_case(around, case, procedure, window_events=8)
        assert scored["impossible_tokens"] == 0
        assert scored["nats"] == pytest.approx(expected, rel=1e-5), procedure


@pytest.mark.parametrize("arch", ARCHS)
def test_nats_of_a_held_out_span_match_a_count_of_the_choices(arch: str) -> None:
    """Beat 1 of voice 1 held out of two voices of three quarter notes (the span [0.5 s, 1 s) at 120 bpm:
    1/16 beats 16 to 32); voice 2's note at beat 1 is kept in the span, the music from beat 2 on after it."""
    rows = [BOS_ROW, note(0, 1, 60), note(0, 2, 48), note(1, 1, 62), note(0, 2, 50), note(1, 1, 64), note(0, 2, 52), EOS_ROW]
    song = Song.from_tokens(np.stack(rows), "two voices, three beats")
    task = infill_task(song, 0.5, 1.0, "1", "seconds")
    case = clipped_song(Case("span", task, song.is_event & ~task.keep))
    assert int(case.held_out.sum()) == 1 and (task.own_from, task.limit) == (16, 32)
    log = math.log
    # the held-out note: type 4 (note, patch or control change, or the end: an infill may stop early), step 16,
    # pitch 88 (piano's range), velocity 128, duration 0..16 (it ends by the span's end, 17)
    note_rest = log(16) + log(88) + log(128) + log(17)
    # unconditional: beat 1..127 from beat 0 (beat 0 lies before the span; past it an event ends the piece): 127
    unconditional = log(4) + log(127) + note_rest
    # interleave: voice 2's kept note comes first, its type drawn (4) and its time forced (every later onset is
    # folded onto it); then the held-out note at the current beat or any later one (an overflow ends the piece): 128
    interleave = log(4) + log(4) + log(128) + note_rest
    around = uniform(arch)
    for procedure, expected in (("unconditional", unconditional), ("interleave", interleave)):
        scored = score_case(around, case, procedure, window_events=8)
        assert scored["impossible_tokens"] == 0
        assert scored["nats"] == pytest.approx(expected, rel=1e-5), procedure


def test_a_part_that_rests_longer_than_anticipated_rows_reach_is_left_out() -> None:
    """A trumpet that plays only at beat 80, over a voice that plays every beat: the kept notes of beats 5 to 79
    wait for the trumpet's note and would sit more than 64 beats behind it, which anticipated rows cannot say."""
    rows = [BOS_ROW, note(0, 2, 60)] + [note(1, 2, 60 + b % 12) for b in range(1, 81)] + [note(0, 1, 72), EOS_ROW]
    trumpet, voice = accompany_cases(Song.from_tokens(np.stack(rows), "cantata ending"))
    antic = AroundModel(torch.nn.Identity(), {}, 4 * 16, "anticipation model")
    assert not expressible(antic, trumpet, "anticipate") and expressible(antic, trumpet, "interleave")
    assert expressible(antic, voice, "anticipate")


def test_cases_hold_out_a_voice_or_a_span_of_multi_track_files(golden_dir: Path) -> None:
    chorale = Song.load(golden_dir / "bach_bwv10.7.mid")
    assert [c.name.split()[-1] for c in accompany_cases(chorale)] == ["1", "2", "3", "4"]
    (span,) = infill_cases(chorale)
    held = span.held_out
    assert held.any() and (chorale.onsets[held] >= span.task.own_from).all() and (chorale.onsets[held] < span.task.limit).all()
    assert span.task.limit - span.task.own_from == 4 * 64  # four bars of 4/4
    assert accompany_cases(Song.load(golden_dir / "folk_essen_altdeu10_1.mid")) == []  # a melody alone has no part to hold out


def test_the_command_writes_a_report_for_each_task(tiny_anticipation_run: Path, tiny_store: Path, tmp_path: Path, capsys) -> None:
    for task in ("accompany", "infill"):
        out = tmp_path / task
        args = ["evaluate", "--checkpoint", str(tiny_anticipation_run), "--data", str(tiny_store), "--split", "train"]
        assert main([*args, "--task", task, "--pieces", "2", "--samples", "2", "--out", str(out)]) == 0
        result = json.loads((out / "evaluation.json").read_text())
        assert set(result["procedures"]) == {"interleave", "anticipate", "unconditional"}
        assert all(p["nats_per_event"] > 0 and p["impossible_tokens"] == 0 for p in result["procedures"].values())
        assert set(result["music"]) == set(result["procedures"])
        assert "(b) anticipate" in (out / "report.md").read_text()
        assert "nats per held-out event" in capsys.readouterr().out
