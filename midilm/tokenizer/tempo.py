"""Musical time -> seconds: the one tempo integration of the package.

Tempo is piecewise constant: a set_tempo event changes the microseconds per
beat from its own time on, and MIDI's 120 bpm holds before the first one. The
decoder, summaries, the sampler's clock and :mod:`midilm.notes` all convert
time through :func:`span_seconds` and :class:`TempoMap`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from midilm import vocab
from midilm.errors import TokenError

DEFAULT_US_PER_BEAT = 60_000_000 // vocab.DEFAULT_BPM
"""MIDI's tempo before the first set_tempo event: 120 beats per minute."""


def bpm_to_tempo(bpm: int) -> int:
    """Microseconds per beat of a bpm token value (0 read as 1), the reference's ``bpm2tempo``."""
    return int((60 / (bpm or 1)) * 10**6)


def span_seconds(ticks: np.ndarray | int, us_per_beat: np.ndarray | float, ticks_per_beat: float) -> np.ndarray | float:
    """Seconds that ``ticks`` last at a constant tempo."""
    return ticks * us_per_beat / 1e6 / ticks_per_beat


@dataclass(frozen=True)
class TempoMap:
    """Piecewise-constant tempo: change ``k`` starts at ``ticks[k]`` (the first
    at tick 0) and lasts until the next; ``seconds[k]`` is when it starts."""

    ticks_per_beat: int
    ticks: np.ndarray
    us_per_beat: np.ndarray
    seconds: np.ndarray

    @classmethod
    def from_changes(cls, ticks_per_beat: int, changes: list[tuple[int, int]]) -> TempoMap:
        """Build from ``(tick, microseconds per beat)`` pairs in any order; of
        several changes at one tick the last listed wins, as in a MIDI player."""
        if ticks_per_beat <= 0:
            raise TokenError(f"score: ticks per beat must be positive (got {ticks_per_beat})")
        by_tick: dict[int, int] = {0: DEFAULT_US_PER_BEAT}
        for tick, us_per_beat in sorted(changes, key=lambda change: change[0]):
            if us_per_beat <= 0:
                raise TokenError(f"score: set_tempo at tick {tick} has a non-positive tempo ({us_per_beat} us per beat)")
            by_tick[int(tick)] = int(us_per_beat)
        ticks = np.fromiter(by_tick, dtype=np.int64)
        us = np.fromiter(by_tick.values(), dtype=np.float64)
        seconds = np.concatenate([[0.0], np.cumsum(span_seconds(np.diff(ticks), us[:-1], ticks_per_beat))])
        return cls(ticks_per_beat, ticks, us, seconds)

    def to_seconds(self, ticks: np.ndarray) -> np.ndarray:
        """Seconds from the start of the piece at each tick."""
        ticks = np.asarray(ticks, dtype=np.int64)
        k = np.searchsorted(self.ticks, ticks, side="right") - 1
        return self.seconds[k] + span_seconds(ticks - self.ticks[k], self.us_per_beat[k], self.ticks_per_beat)

    def to_ticks(self, seconds: float) -> float:
        """The tick (fractional) reached ``seconds`` from the start: the inverse of :meth:`to_seconds`."""
        k = int(np.searchsorted(self.seconds, seconds, side="right")) - 1
        return float(self.ticks[k] + (seconds - self.seconds[k]) * 1e6 / self.us_per_beat[k] * self.ticks_per_beat)

    def bpm(self) -> np.ndarray:
        """Beats per minute of each tempo segment."""
        return 60e6 / self.us_per_beat
