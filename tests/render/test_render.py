"""WAV and piano-roll rendering."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from midilm.errors import ConfigError
from midilm.render import render_piano_roll, render_wav
from midilm.render.audio import PEAK, default_soundfont
from midilm.render.pianoroll import note_groups, pitch_ticks
from midilm.tokenizer import score_to_midi

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def two_second_midi() -> bytes:
    """A C major triad for one second then G4 for one second, at 120 bpm, on a piano."""
    triad = [["note", 0, 960, 0, pitch, 100] for pitch in (60, 64, 67)]
    return score_to_midi([480, [["set_tempo", 0, 500_000], ["patch_change", 0, 0, 0], *triad, ["note", 960, 960, 0, 67, 100]]])


def read_wav(path: Path) -> tuple[wave._wave_params, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        params = wav.getparams()
        frames = np.frombuffer(wav.readframes(params.nframes), dtype="<i2").reshape(-1, params.nchannels)
    return params, frames


def test_render_wav_writes_two_seconds_of_sound(tmp_path):
    rendered = render_wav(two_second_midi(), tmp_path / "x.wav")
    seconds = rendered.seconds
    assert not rendered.cut and rendered.describe() == ""
    params, frames = read_wav(tmp_path / "x.wav")
    assert (params.nchannels, params.sampwidth, params.framerate) == (2, 2, 22050)
    assert seconds == pytest.approx(2.0, abs=0.05)
    assert params.nframes == pytest.approx(2.0 * 22050, abs=0.05 * 22050)
    assert np.abs(frames).max() == round(PEAK * 32767)  # normalised
    first, second = frames[:22050].astype(float), frames[22050:].astype(float)
    assert np.sqrt((first**2).mean()) > 300 and np.sqrt((second**2).mean()) > 300  # sound in both halves


def test_render_wav_at_another_rate(tmp_path):
    render_wav(two_second_midi(), tmp_path / "x.wav", sample_rate=8000)
    params, _ = read_wav(tmp_path / "x.wav")
    assert params.framerate == 8000 and params.nframes == pytest.approx(16000, abs=400)


def test_render_wav_stops_at_max_seconds_and_says_so(tmp_path, recwarn):
    rendered = render_wav(two_second_midi(), tmp_path / "x.wav", max_seconds=1.0)
    assert 0.5 <= rendered.seconds <= 1.01 and rendered.piece_seconds == pytest.approx(2.0, abs=0.05) and rendered.cut
    assert rendered.describe() == "the WAV holds the first 1 s of this 2-second piece"
    assert not recwarn.list  # said by the caller, never as a Python warning with a source line


def test_a_piece_without_notes_gives_an_empty_wav(tmp_path):
    assert render_wav(score_to_midi([480, [["patch_change", 0, 0, 5]]]), tmp_path / "silent.wav").seconds == 0.0
    params, _ = read_wav(tmp_path / "silent.wav")
    assert (params.nchannels, params.nframes) == (2, 0)


def test_the_default_soundfont_ships_with_pretty_midi():
    assert default_soundfont().name == "TimGM6mb.sf2" and default_soundfont().stat().st_size > 1_000_000


def test_no_bundled_soundfont_names_where_it_looked(monkeypatch):
    import midilm.render.audio as audio

    monkeypatch.setattr(audio, "SOUNDFONT_FILE", "Missing.sf2")
    with pytest.raises(ConfigError, match=r"Missing\.sf2 not found in .*pretty_midi"):
        audio.default_soundfont()


def test_a_missing_soundfont_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nowhere.sf2"):
        render_wav(two_second_midi(), tmp_path / "x.wav", soundfont=tmp_path / "nowhere.sf2")


def score_with_drums_and_two_instruments() -> list:
    return [
        480,
        [["set_tempo", 0, 600_000], ["patch_change", 0, 0, 40], ["note", 0, 960, 0, 76, 90], ["note", 960, 480, 0, 79, 90]],
        [["patch_change", 0, 1, 32], ["note", 0, 1920, 1, 40, 80]],
        [["note", 480 * i, 120, 9, 36 if i % 2 == 0 else 38, 110] for i in range(4)],
    ]


def test_piano_roll_writes_a_png(tmp_path):
    render_piano_roll(score_with_drums_and_two_instruments(), tmp_path / "roll.png", title="test")
    data = (tmp_path / "roll.png").read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5_000


def test_piano_roll_of_a_piece_without_notes(tmp_path):
    render_piano_roll([480, [["set_tempo", 0, 500_000]]], tmp_path / "empty.png")
    assert (tmp_path / "empty.png").read_bytes().startswith(PNG_MAGIC)


def test_legend_names_each_track_once_with_its_instruments_and_channels():
    from midilm.notes import notes_of_score

    score = [
        480,
        [["patch_change", 0, 0, 40], ["note", 0, 480, 0, 76, 90], ["patch_change", 480, 0, 73], ["note", 480, 480, 0, 79, 90]],
        [["patch_change", 0, 1, 0], ["patch_change", 0, 2, 32], ["note", 0, 960, 1, 60, 80], ["note", 0, 960, 2, 40, 80]],
        [["note", 0, 120, 9, 36, 110]],
    ]
    labels = [group.label for group in note_groups(notes_of_score(score).table)]
    assert labels == [
        "track 0: Violin / Flute",  # a program change inside a track: one entry, both instruments
        "track 1 (ch 2): Acoustic Grand Piano",  # two channels in one track: the channel tells them apart
        "track 1 (ch 3): Acoustic Bass",
        "track 2: drums",
    ]
    assert len(set(labels)) == len(labels)


def test_pitch_labels_follow_the_range():
    assert list(pitch_ticks(30, 90)) == [36, 48, 60, 72, 84]  # every C
    assert list(pitch_ticks(58, 80)) == [60, 67, 72, 79]  # C and G
    assert list(pitch_ticks(60, 67)) == [60, 62, 64, 65, 67]  # naturals


def test_piano_roll_marks_where_a_continued_prompt_ends(golden_dir, tmp_path):
    tokens = np.load(golden_dir / "bach_bwv1.6.opt.npy")
    render_piano_roll(tokens, tmp_path / "plain.png")
    render_piano_roll(tokens, tmp_path / "marked.png", prompt_seconds=10.0)
    plain, marked = (_pixels(tmp_path / name) for name in ("plain.png", "marked.png"))
    assert plain.shape == marked.shape
    columns = np.flatnonzero((np.abs(plain - marked).sum(axis=-1) > 0.1).any(axis=0))
    assert columns.size and columns.min() < plain.shape[1] // 4  # the shaded prompt starts at 0 s, at the left


def _pixels(path: Path) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(path)[..., :3]


def test_render_wav_of_tokens_lasts_as_long_as_the_notes(golden_dir, tmp_path):
    from midilm.notes import notes_of_tokens

    tokens = np.load(golden_dir / "folk_essen_altdeu10_1.opt.npy")
    seconds = render_wav(tokens, tmp_path / "folk.wav", sample_rate=8000).seconds
    params, frames = read_wav(tmp_path / "folk.wav")
    assert seconds == pytest.approx(notes_of_tokens(tokens).seconds, abs=0.05)
    assert params.nframes / 8000 == pytest.approx(seconds)
    assert np.sqrt((frames.astype(float) ** 2).mean()) > 300


def test_piano_roll_of_tokens(golden_dir, tmp_path):
    render_piano_roll(np.load(golden_dir / "bach_bwv1.6.opt.npy"), tmp_path / "bach.png")
    assert (tmp_path / "bach.png").read_bytes().startswith(PNG_MAGIC)


def test_piano_roll_of_many_instruments(tmp_path):
    # 30 programs on one channel: the legend names the 12 with most notes and counts the rest
    events = [
        e for program in range(30) for e in (["patch_change", 240 * program, 0, program], ["note", 240 * program, 120, 0, 40 + program, 90])
    ]
    render_piano_roll([480, events], tmp_path / "many.png")
    assert (tmp_path / "many.png").read_bytes().startswith(PNG_MAGIC)


def violin_note(pitch: int) -> bytes:
    """One long violin note: TimGM6mb's violin at pitches 98 to 107 made symusic 0.5.9's synthesizer loop forever at 22,050 Hz."""
    return score_to_midi([480, [["patch_change", 0, 0, 40], ["note", 0, 1920, 0, pitch, 113]]])


def test_a_synthesizer_that_hangs_is_stopped_and_named(tmp_path, monkeypatch):
    import time

    from midilm.errors import RenderError
    from midilm.render import audio

    monkeypatch.setattr(audio, "RENDER_BASE_S", 5.0)
    began = time.monotonic()
    try:
        render_wav(violin_note(100), tmp_path / "violin.wav")  # may render, with a synthesizer that no longer hangs
    except RenderError as exc:
        assert "did not finish within 6 s and was stopped" in str(exc)
    assert time.monotonic() - began < 30


def test_a_failing_synthesizer_is_named(monkeypatch):
    from midilm.errors import RenderError
    from midilm.render import audio

    with pytest.raises(RenderError, match=r"did not finish within 0 s"):
        audio._render_in_child(two_second_midi(), default_soundfont(), 22050, timeout_s=0.01)
    with pytest.raises(RenderError, match=r"the synthesizer failed \(exit 1\)"):
        audio._render_in_child(b"not midi", default_soundfont(), 22050, timeout_s=60)


def test_a_sample_whose_audio_fails_keeps_its_midi_and_piano_roll(golden_dir, tmp_path, monkeypatch):
    import json

    from midilm.errors import RenderError
    from midilm.render import audio
    from midilm.sample.output import write_sample
    from midilm.tokenizer import tokenize

    def stuck(*args, **kwargs):
        raise RenderError("the synthesizer did not finish within 61 s and was stopped")

    monkeypatch.setattr(audio, "_render_in_child", stuck)
    tokens = tokenize(golden_dir / "bach_bwv1.6.mid").tokens
    files, notes = write_sample(tmp_path, "s", tokens, {}, audio=True, piano_roll=True)
    assert "audio" not in files and not (tmp_path / "s.wav").exists()
    assert files["midi"].is_file() and files["piano_roll"].is_file()
    assert notes == ["s.wav: not written: the synthesizer did not finish within 61 s and was stopped"]
    assert json.loads(files["record"].read_text())["audio_error"].startswith("the synthesizer did not finish")
