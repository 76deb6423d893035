"""midilm's exceptions: one base class, one subclass per layer.

Messages name the file (or setting) and the reason, so a user can act on them
without a traceback; the CLI prints ``str(error)`` and exits non-zero.
"""

from __future__ import annotations

import os


class MidilmError(Exception):
    """Base class of every error midilm raises on purpose."""


class MidiFileError(MidilmError):
    """A MIDI file that cannot be read or tokenized: names the file and why."""

    def __init__(self, source: str | os.PathLike | None, reason: str) -> None:
        self.source = None if source is None else str(source)
        self.reason = reason
        where = self.source if self.source is not None else "<bytes>"
        super().__init__(f"{where}: {reason}")


class TokenError(MidilmError):
    """A token array that is not a valid v2 sequence (wrong shape, dtype or ids)."""


class ConfigError(MidilmError):
    """A setting that cannot work (unknown arch, impossible size, mismatched store)."""


class StoreError(MidilmError):
    """A token store that is missing, corrupt, or built with other options."""


class CheckpointError(MidilmError):
    """A checkpoint that is missing, corrupt, or made for another vocabulary or model."""


class RenderError(MidilmError):
    """Audio that could not be rendered (the synthesizer failed or did not finish)."""
