"""The notes of a piece in seconds and beats, and its tempo map.

Rendering, music statistics and generation limits all need "which note sounds
when", not tokens. This module reads that from the decoded score (the
reference's list form, via :func:`midilm.tokenizer.detokenize`, which reads
tokens with the package's one event parser), converts time with the one tempo
map (:class:`~midilm.tokenizer.tempo.TempoMap`, re-exported here), and keeps
it in flat numpy arrays so statistics over thousands of pieces stay vectorised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from midilm import vocab
from midilm.errors import TokenError
from midilm.tokenizer.tempo import TempoMap
from midilm.vocab import DRUM_CHANNEL

NOTE_DTYPE = np.dtype(
    [
        ("start_seconds", np.float64),
        ("end_seconds", np.float64),
        ("start_beats", np.float64),
        ("end_beats", np.float64),
        ("pitch", np.uint8),
        ("velocity", np.uint8),
        ("channel", np.uint8),
        ("track", np.uint16),
        ("program", np.uint8),
        ("is_drum", np.bool_),
    ]
)
"""One row per note; ``track`` is the track's index in the decoded score and
``program`` the channel's General MIDI program at the note's start."""

Score = Sequence[Any]
"""The reference's score list: ``[ticks_per_beat, track0, track1, ...]``."""


@dataclass(frozen=True)
class Notes:
    """A piece's notes (``table``, a :data:`NOTE_DTYPE` array sorted by start
    time, then pitch) and its tempo map."""

    table: np.ndarray
    tempo: TempoMap

    def __len__(self) -> int:
        return len(self.table)

    @property
    def seconds(self) -> float:
        """When the last note ends (0 for a piece without notes)."""
        return float(self.table["end_seconds"].max()) if len(self.table) else 0.0

    @property
    def pitched(self) -> np.ndarray:
        """The rows of non-drum notes (drum 'pitches' name instruments, not notes)."""
        return self.table[~self.table["is_drum"]]


def notes_of_score(score: Score) -> Notes:
    """The notes of a decoded score (``[ticks_per_beat, track0, ...]``)."""
    if not isinstance(score, (list, tuple)) or not score or not isinstance(score[0], int):
        raise TokenError("score: expected [ticks_per_beat, track0, track1, ...]")
    ticks_per_beat = score[0]
    tempo_changes: list[tuple[int, int]] = []
    patches: list[tuple[int, int, int]] = []  # (tick, channel, program)
    rows: list[tuple[int, int, int, int, int, int]] = []  # (start, duration, pitch, velocity, channel, track)
    for track_index, track in enumerate(score[1:]):
        for event in track:
            kind = event[0]
            if kind == "note":
                _, start, duration, channel, pitch, velocity = event[:6]
                rows.append((start, duration, pitch, velocity, channel, track_index))
            elif kind == "set_tempo":
                tempo_changes.append((event[1], event[2]))
            elif kind == "patch_change":
                patches.append((event[1], event[2], event[3]))
    tempo = TempoMap.from_changes(ticks_per_beat, tempo_changes)
    return Notes(_note_table(np.array(rows, dtype=np.int64).reshape(-1, 6), patches, tempo), tempo)


def notes_of_tokens(tokens: np.ndarray) -> Notes:
    """The notes of a token array ``[n_events, 8]``, decoded as MIDI export would."""
    from midilm.tokenizer import detokenize

    return notes_of_score(detokenize(tokens))


def read_notes(piece: np.ndarray | Score) -> Notes:
    """The notes of a token array or a decoded score."""
    return notes_of_tokens(piece) if isinstance(piece, np.ndarray) else notes_of_score(piece)


def part_notes(tokens: np.ndarray, part: np.ndarray) -> tuple[Notes, Notes]:
    """The notes of the note rows ``part`` marks and of the others, timed as in the
    whole piece. A row's time counts from the row before it, so a subset of rows
    cannot be decoded on its own: the whole piece is, and each note goes to the part
    of the row with its onset, pitch, channel and track."""
    from midilm.anticipation import stream_onsets

    tokens, part = np.asarray(tokens), np.asarray(part, dtype=bool)
    notes = notes_of_tokens(tokens)
    events = (tokens[:, 0] >= vocab.FIRST_EVENT_ID) & (tokens[:, 0] <= vocab.LAST_EVENT_ID)
    slot = {name: 1 + vocab.EVENT_PARAMS["note"].index(name) for name in ("track", "channel", "pitch")}
    used = sorted(set(tokens[events, slot["track"]].tolist()))  # the score holds these tracks, in this order
    marked = part & (tokens[:, 0] == vocab.EVENT_ID["note"])
    onsets = stream_onsets(tokens)[marked]
    keys = {
        (
            onset,
            int(row[slot["pitch"]]) - vocab.PARAM_OFFSET["pitch"],
            int(row[slot["channel"]]) - vocab.PARAM_OFFSET["channel"],
            used.index(int(row[slot["track"]])),
        )
        for onset, row in zip(onsets.tolist(), tokens[marked], strict=True)
    }
    table = notes.table
    steps = np.rint(table["start_beats"] * vocab.PARAM_SIZES["time2"]).astype(np.int64).tolist()
    mine = np.array(
        [k in keys for k in zip(steps, table["pitch"].tolist(), table["channel"].tolist(), table["track"].tolist(), strict=True)],
        dtype=bool,
    )
    return Notes(table[mine], notes.tempo), Notes(table[~mine], notes.tempo)


def _note_table(rows: np.ndarray, patches: list[tuple[int, int, int]], tempo: TempoMap) -> np.ndarray:
    start_ticks, duration_ticks = rows[:, 0], rows[:, 1]
    end_ticks = start_ticks + duration_ticks
    table = np.empty(len(rows), dtype=NOTE_DTYPE)
    table["start_seconds"] = tempo.to_seconds(start_ticks)
    table["end_seconds"] = tempo.to_seconds(end_ticks)
    table["start_beats"] = start_ticks / tempo.ticks_per_beat
    table["end_beats"] = end_ticks / tempo.ticks_per_beat
    table["pitch"], table["velocity"], table["channel"], table["track"] = rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5]
    table["program"] = _programs(start_ticks, rows[:, 4], patches)
    table["is_drum"] = rows[:, 4] == DRUM_CHANNEL
    return table[np.lexsort((table["pitch"], table["start_seconds"]))]


def _programs(start_ticks: np.ndarray, channels: np.ndarray, patches: list[tuple[int, int, int]]) -> np.ndarray:
    """Each note's program: its channel's last patch change at or before the
    note starts (program 0 before any); a channel's state spans all tracks, as in MIDI."""
    programs = np.zeros(len(start_ticks), dtype=np.int64)
    if not patches:
        return programs
    table = np.array(sorted(patches, key=lambda p: p[0]), dtype=np.int64)
    for channel in np.unique(table[:, 1]):
        changes = table[table[:, 1] == channel]
        mine = channels == channel
        k = np.searchsorted(changes[:, 0], start_ticks[mine], side="right") - 1
        programs[mine] = np.where(k >= 0, changes[np.maximum(k, 0), 2], 0)
    return programs
