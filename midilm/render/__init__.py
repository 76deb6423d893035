"""Listening to and looking at pieces: WAV through a General MIDI soundfont, piano-roll PNGs."""

from midilm.render.audio import render_wav
from midilm.render.pianoroll import render_piano_roll

__all__ = ["render_piano_roll", "render_wav"]
