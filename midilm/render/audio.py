"""WAV rendering with a General MIDI soundfont that installs with pip.

symusic's synthesizer plays the MIDI file (notes, programs, controllers and
tempo as written by :func:`midilm.tokenizer.tokens_to_midi`); the default
soundfont is ``TimGM6mb.sf2``, which ships inside the ``pretty_midi`` package,
so rendering works offline with the project's own dependencies.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
import wave
from pathlib import Path

import numpy as np

from midilm.errors import ConfigError, MidiFileError

DEFAULT_SAMPLE_RATE = 22050
SOUNDFONT_PACKAGE = "pretty_midi"
SOUNDFONT_FILE = "TimGM6mb.sf2"
PEAK = 0.9
"""Peak level after normalisation (about -1 dBFS), leaving headroom for players that resample."""
MAX_SECONDS = 600.0
"""Longest audio rendered by default: an untrained model can write hours of near
silence (long time shifts), whose WAV would take gigabytes."""


def default_soundfont() -> Path:
    """The General MIDI soundfont bundled with ``pretty_midi``."""
    spec = importlib.util.find_spec(SOUNDFONT_PACKAGE)
    folders = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    for folder in folders:
        if (folder / SOUNDFONT_FILE).is_file():
            return folder / SOUNDFONT_FILE
    where = ", ".join(str(f) for f in folders) or f"(package {SOUNDFONT_PACKAGE} is not installed)"
    raise ConfigError(f"no soundfont: {SOUNDFONT_FILE} not found in {where}; install pretty_midi or pass a .sf2/.sf3 file as soundfont")


def synthesize(
    midi: bytes,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    soundfont: str | os.PathLike | None = None,
    max_seconds: float | None = MAX_SECONDS,
) -> np.ndarray:
    """Stereo float audio ``[2, n_samples]`` of a MIDI file's bytes, peak-normalised
    to :data:`PEAK`, cut after ``max_seconds`` (with a warning) unless that is None."""
    import symusic

    font = Path(soundfont) if soundfont is not None else default_soundfont()
    if not font.is_file():
        raise ConfigError(f"soundfont {font}: no such file")
    if sample_rate <= 0:
        raise ConfigError(f"sample_rate must be positive (got {sample_rate})")
    try:
        score = symusic.Score.from_midi(midi).to("second")
    except Exception as exc:  # symusic raises RuntimeError/ValueError variants for bad files
        raise MidiFileError(None, f"cannot read the MIDI data to render: {exc}") from exc
    seconds = max(float(score.end()), 0.0)
    if max_seconds is not None and seconds > max_seconds:
        warnings.warn(f"the piece lasts {seconds:.0f} s; rendering its first {max_seconds:.0f} s only (max_seconds)", stacklevel=3)
        score, seconds = score.clip(0, max_seconds, clip_end=True), max_seconds
    if not any(len(track.notes) for track in score.tracks):
        return np.zeros((2, round(seconds * sample_rate)), dtype=np.float32)  # silence: the synthesizer refuses a score without notes
    audio = np.asarray(symusic.Synthesizer(sf_path=str(font), sample_rate=sample_rate).render(score, stereo=True), dtype=np.float32)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return audio * (PEAK / peak) if peak > 0 else audio


def write_wav(audio: np.ndarray, path: str | os.PathLike, sample_rate: int) -> None:
    """Write ``[channels, n_samples]`` float audio in [-1, 1] as 16-bit PCM."""
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(pcm.shape[0])
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(np.ascontiguousarray(pcm.T).tobytes())


def render_wav(
    piece: np.ndarray | bytes,
    path: str | os.PathLike,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    soundfont: str | os.PathLike | None = None,
    max_seconds: float | None = MAX_SECONDS,
) -> float:
    """Render a token array or a MIDI file's bytes to a stereo WAV; returns its
    length in seconds. Audio past ``max_seconds`` is left out, with a warning."""
    if isinstance(piece, np.ndarray):
        from midilm.tokenizer import tokens_to_midi

        piece = tokens_to_midi(piece)
    audio = synthesize(piece, sample_rate, soundfont, max_seconds)
    write_wav(audio, path, sample_rate)
    return audio.shape[1] / sample_rate
