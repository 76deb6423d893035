"""WAV rendering with a General MIDI soundfont that installs with pip.

symusic's synthesizer plays the MIDI file (notes, programs, controllers and
tempo as written by :func:`midilm.tokenizer.tokens_to_midi`); the default
soundfont is ``TimGM6mb.sf2``, which ships inside the ``pretty_midi`` package,
so rendering works offline with the project's own dependencies.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from midilm.errors import ConfigError, MidiFileError, RenderError

DEFAULT_SAMPLE_RATE = 22050
SOUNDFONT_PACKAGE = "pretty_midi"
SOUNDFONT_FILE = "TimGM6mb.sf2"
PEAK = 0.9
"""Peak level after normalisation (about -1 dBFS), leaving headroom for players that resample."""
MAX_SECONDS = 300.0
"""Longest audio rendered by default (a 26 MB WAV at the default rate): an
untrained model can write hours of near silence (long time shifts), whose WAV
would take gigabytes."""
RENDER_BASE_S = 60.0
RENDER_S_PER_PIECE_S = 0.5
"""Time the synthesizer gets: a minute, plus half a second per second of music (it renders about a hundred times
faster than real time), before it is taken to be stuck (see :mod:`midilm.render.synth_worker`)."""


@dataclass(frozen=True)
class RenderedAudio:
    """What a WAV holds: ``seconds`` of audio, of a piece that lasts
    ``piece_seconds``, rendered up to ``max_seconds`` (None: no limit)."""

    seconds: float
    piece_seconds: float
    max_seconds: float | None

    @property
    def cut(self) -> bool:
        """Whether the piece is longer than the limit, so that its end is left out."""
        return self.max_seconds is not None and self.piece_seconds > self.max_seconds

    def describe(self) -> str:
        """A note for the user when the WAV leaves out the end of the piece, else ''."""
        return f"the WAV holds the first {self.max_seconds:.0f} s of this {self.piece_seconds:.0f}-second piece" if self.cut else ""


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
) -> tuple[np.ndarray, float]:
    """Stereo float audio ``[2, n_samples]`` of a MIDI file's bytes, peak-normalised
    to :data:`PEAK` and cut after ``max_seconds`` unless that is None; and the
    length of the whole piece in seconds."""
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
    piece_seconds = seconds = max(float(score.end()), 0.0)
    if max_seconds is not None and seconds > max_seconds:
        score, seconds = score.clip(0, max_seconds, clip_end=True), max_seconds
    if not any(len(track.notes) for track in score.tracks):
        return np.zeros((2, round(seconds * sample_rate)), dtype=np.float32), piece_seconds  # the synthesizer refuses a score without notes
    audio = _render_in_child(score.to("tick").dumps_midi(), font, sample_rate, RENDER_BASE_S + RENDER_S_PER_PIECE_S * seconds)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return (audio * (PEAK / peak) if peak > 0 else audio), piece_seconds


def _render_in_child(midi: bytes, font: Path, sample_rate: int, timeout_s: float) -> np.ndarray:
    """Stereo audio of ``midi`` from the synthesizer, run in a child process that is stopped after ``timeout_s``."""
    with tempfile.TemporaryDirectory(prefix="midilm-render-") as folder:
        midi_path, out_path = Path(folder, "piece.mid"), Path(folder, "audio.npy")
        midi_path.write_bytes(midi)
        command = [sys.executable, "-m", "midilm.render.synth_worker", str(midi_path), str(font), str(sample_rate), str(out_path)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise RenderError(
                f"the synthesizer did not finish within {timeout_s:.0f} s and was stopped (symusic's synthesizer can hang on a "
                "few high notes of some instruments)"
            ) from exc
        if done.returncode != 0 or not out_path.is_file():
            last_line = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise RenderError(f"the synthesizer failed (exit {done.returncode}): {last_line}")
        return np.load(out_path)


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
) -> RenderedAudio:
    """Render a token array or a MIDI file's bytes to a stereo WAV. A piece longer
    than ``max_seconds`` is rendered up to there (``.cut`` of the result says so)."""
    if isinstance(piece, np.ndarray):
        from midilm.tokenizer import tokens_to_midi

        piece = tokens_to_midi(piece)
    audio, piece_seconds = synthesize(piece, sample_rate, soundfont, max_seconds)
    write_wav(audio, path, sample_rate)
    return RenderedAudio(audio.shape[1] / sample_rate, piece_seconds, max_seconds)
