"""Piano-roll pictures: notes as bars of pitch against seconds, one colour per
track and channel, drum hits as crosses, so a listener can see at a glance
what a sample plays and when, and where a continued prompt ends."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from midilm.notes import Notes, Score, part_notes, read_notes

NOTE_HEIGHT = 0.8
"""Bar height in semitones; the gap between bars keeps neighbouring pitches apart."""
INCHES_PER_SECOND = 0.25
MIN_WIDTH_INCHES, MAX_WIDTH_INCHES, HEIGHT_INCHES = 8.0, 14.0, 5.5
"""A long piece is drawn at most 2.5 times as wide as high, so that a page
column (the web app's) shows it tall enough to read."""
DPI = 100
DRUM_COLOUR = "0.15"
PROMPT_SHADE = "0.5"
LEGEND_ENTRIES = 12
"""Most groups named in the legend (the ones with most notes); an untrained
model may switch instruments often enough to list dozens."""


NAMES_PER_LABEL = 3
"""Instruments named in one legend entry; a track that changes program more often says how many more."""


@dataclass(frozen=True)
class NoteGroup:
    """The notes of one track on one channel: drawn in one colour, named once in the legend."""

    track: int
    channel: int
    notes: np.ndarray
    label: str

    @property
    def is_drum(self) -> bool:
        return bool(self.notes["is_drum"][0])


def instrument_name(program: int, is_drum: bool) -> str:
    import pretty_midi

    return "drums" if is_drum else pretty_midi.program_to_instrument_name(program)


def group_label(track: int, channel: int | None, programs: list[int], is_drum: bool) -> str:
    """Legend text of the notes of one track and channel: the track, the
    channel (1-16, as MIDI players number them) when the track has notes on
    several, and its instruments in the order they first play."""
    where = f"track {track}" if channel is None else f"track {track} (ch {channel + 1})"
    names = list(dict.fromkeys(instrument_name(program, is_drum) for program in programs))
    more = f" / +{len(names) - NAMES_PER_LABEL} more" if len(names) > NAMES_PER_LABEL else ""
    return f"{where}: {' / '.join(names[:NAMES_PER_LABEL])}{more}"


def note_groups(table: np.ndarray) -> list[NoteGroup]:
    """The notes of a :data:`~midilm.notes.NOTE_DTYPE` table by (track, channel), each with its label."""
    keys = sorted({(int(t), int(c)) for t, c in zip(table["track"], table["channel"], strict=True)})
    channels = Counter(track for track, _ in keys)
    groups = []
    for track, channel in keys:
        mine = table[(table["track"] == track) & (table["channel"] == channel)]
        programs = [int(p) for p in mine[np.argsort(mine["start_seconds"], kind="stable")]["program"]]
        label = group_label(track, channel if channels[track] > 1 else None, programs, bool(mine["is_drum"][0]))
        groups.append(NoteGroup(track, channel, mine, label))
    return groups


NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(pitch: int) -> str:
    """Scientific pitch notation: 60 is C4."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def pitch_ticks(low: int, high: int) -> np.ndarray:
    """Pitches to label between ``low`` and ``high``: every C over a wide
    range, C and G over one or two octaves, every natural note over less."""
    span = high - low
    classes = (0,) if span > 36 else (0, 7) if span > 12 else (0, 2, 4, 5, 7, 9, 11)
    pitches = np.arange(max(low, 0), min(high, 127) + 1)
    return pitches[np.isin(pitches % 12, classes)]


def _rectangles(starts: np.ndarray, ends: np.ndarray, pitches: np.ndarray) -> np.ndarray:
    """Corner coordinates ``[n, 4, 2]`` of each note's bar."""
    low, high = pitches - NOTE_HEIGHT / 2, pitches + NOTE_HEIGHT / 2
    return np.stack(
        [np.stack([starts, low], -1), np.stack([ends, low], -1), np.stack([ends, high], -1), np.stack([starts, high], -1)], axis=1
    )


KEPT_COLOUR = "0.72"
"""Notes a piece kept from its input (accompaniment, infilling), drawn under the new ones."""


def render_piano_roll(
    piece: np.ndarray | Score | Notes,
    path: str | os.PathLike,
    title: str | None = None,
    *,
    prompt_seconds: float | None = None,
    kept_rows: np.ndarray | None = None,
) -> None:
    """Draw a token array, decoded score or :class:`~midilm.notes.Notes` to a PNG.

    ``prompt_seconds``: where a continued prompt ends and generated music
    begins; the prompt's span is shaded and the boundary drawn as a line.
    ``kept_rows`` (token arrays only): which rows were kept from the input
    (accompaniment, infilling); their notes are drawn in grey, the new ones in
    their instruments' colours.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    notes = piece if isinstance(piece, Notes) else read_notes(piece)
    kept = None
    if kept_rows is not None:
        kept, notes = part_notes(np.asarray(piece), np.asarray(kept_rows, dtype=bool))
    table = notes.table
    everything = table if kept is None else np.concatenate([table, kept.table])  # what the axes cover
    music_seconds = max(notes.seconds, kept.seconds if kept is not None else 0.0)
    seconds = max(music_seconds, prompt_seconds or 0.0, 1.0)
    width = float(np.clip(seconds * INCHES_PER_SECOND, MIN_WIDTH_INCHES, MAX_WIDTH_INCHES))
    figure = Figure(figsize=(width, HEIGHT_INCHES), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    legend = _draw_kept(axes, kept, len(everything)) + _draw_groups(axes, table)
    if prompt_seconds is not None:
        axes.axvspan(0, prompt_seconds, color=PROMPT_SHADE, alpha=0.12, zorder=0)
        axes.axvline(prompt_seconds, color="black", linestyle="--", linewidth=1.2, zorder=4)
        axes.text(
            prompt_seconds,
            1.0,
            " prompt | generated \u2192",
            transform=axes.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize="small",
        )
    if len(everything):
        low, high = int(everything["pitch"].min()) - 2, int(everything["pitch"].max()) + 2
        axes.set_ylim(low, high)
        ticks = pitch_ticks(low, high)
        axes.set_yticks(ticks, [note_name(pitch) for pitch in ticks])
        handles, labels = _legend_entries(legend)
        axes.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    else:
        axes.text(0.5, 0.5, "no notes", transform=axes.transAxes, ha="center", va="center")
    axes.set_xlim(0, seconds)
    axes.set_xlabel("seconds")
    axes.set_ylabel("pitch")
    axes.grid(True, alpha=0.3)
    axes.set_title(title or f"{len(everything)} notes, {music_seconds:.1f} s", pad=14 if prompt_seconds is not None else 6)
    figure.tight_layout()
    figure.savefig(os.fspath(path), format="png")


def _draw_kept(axes: Any, kept: Notes | None, rank: int) -> list[tuple[int, Any, str]]:
    """Draw the kept notes in grey; their legend entry counts ``rank`` notes, so it is listed."""
    from matplotlib.collections import PolyCollection

    if kept is None or not len(kept):
        return []
    k = kept.table
    artist = PolyCollection(
        _rectangles(k["start_seconds"], k["end_seconds"], k["pitch"].astype(np.float64)), facecolors=KEPT_COLOUR, edgecolors="none"
    )
    axes.add_collection(artist)
    return [(rank, artist, f"kept ({len(k)} notes)")]


def _draw_groups(axes: Any, table: np.ndarray) -> list[tuple[int, Any, str]]:
    """Draw the notes, one colour per group; returns (notes, artist, label) per group."""
    import matplotlib
    from matplotlib.collections import PolyCollection

    palette = [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]]
    legend: list[tuple[int, Any, str]] = []
    for i, group in enumerate(note_groups(table)):
        mine = group.notes
        if group.is_drum:
            artist = axes.scatter(mine["start_seconds"], mine["pitch"], marker="x", s=12, linewidths=0.8, color=DRUM_COLOUR, zorder=3)
        else:
            artist = PolyCollection(
                _rectangles(mine["start_seconds"], mine["end_seconds"], mine["pitch"].astype(np.float64)),
                facecolors=palette[i % len(palette)],
                edgecolors="none",
                alpha=0.85,
            )
            axes.add_collection(artist)
        legend.append((len(mine), artist, group.label))
    return legend


def _legend_entries(legend: list[tuple[int, Any, str]]) -> tuple[list[Any], list[str]]:
    """The groups with most notes, in track order, then a line counting the others."""
    from matplotlib.lines import Line2D

    most = sorted(range(len(legend)), key=lambda i: -legend[i][0])[:LEGEND_ENTRIES]
    shown = [legend[i] for i in sorted(most)]  # in track order
    handles, labels = [a for _, a, _ in shown], [label for _, _, label in shown]
    if len(legend) > len(shown):
        handles.append(Line2D([], [], linestyle="none"))
        labels.append(f"... {len(legend) - len(shown)} more")
    return handles, labels
