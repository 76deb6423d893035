"""Piano-roll pictures: notes as bars of pitch against seconds, one colour per
track and instrument, drum hits as crosses, so a listener can see at a glance
what a sample plays and when."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from midilm.notes import Notes, Score, read_notes

NOTE_HEIGHT = 0.8
"""Bar height in semitones; the gap between bars keeps neighbouring pitches apart."""
INCHES_PER_SECOND = 0.25
MIN_WIDTH_INCHES, MAX_WIDTH_INCHES, HEIGHT_INCHES = 8.0, 24.0, 5.0
DPI = 100
DRUM_COLOUR = "0.15"
LEGEND_ENTRIES = 12
"""Most groups named in the legend (the ones with most notes); an untrained
model may switch instruments often enough to list dozens."""


def instrument_label(track: int, program: int, is_drum: bool) -> str:
    """Legend text of one group of notes, with the General MIDI instrument name."""
    import pretty_midi

    return f"track {track}: {'drums' if is_drum else pretty_midi.program_to_instrument_name(program)}"


def _rectangles(starts: np.ndarray, ends: np.ndarray, pitches: np.ndarray) -> np.ndarray:
    """Corner coordinates ``[n, 4, 2]`` of each note's bar."""
    low, high = pitches - NOTE_HEIGHT / 2, pitches + NOTE_HEIGHT / 2
    return np.stack(
        [np.stack([starts, low], -1), np.stack([ends, low], -1), np.stack([ends, high], -1), np.stack([starts, high], -1)], axis=1
    )


KEPT_COLOUR = "0.72"
"""Notes a piece kept from its input (accompaniment, infilling), drawn under the new ones."""


def _split_kept(tokens: np.ndarray, kept_rows: np.ndarray) -> tuple[Notes, Notes]:
    """The notes of the kept rows and of the others; every row that is not a note
    (tempo, instruments) goes to both, so each part keeps its timing and programs."""
    from midilm import vocab

    not_note = np.asarray(tokens)[:, 0] != vocab.EVENT_ID["note"]
    return read_notes(tokens[kept_rows | not_note]), read_notes(tokens[~kept_rows | not_note])


def render_piano_roll(
    piece: np.ndarray | Score | Notes, path: str | os.PathLike, title: str | None = None, *, kept_rows: np.ndarray | None = None
) -> None:
    """Draw a token array, decoded score or :class:`~midilm.notes.Notes` to a PNG.
    ``kept_rows`` (token arrays only): which rows were kept from the input; their
    notes are drawn in grey, the new ones in their instruments' colours."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    notes = piece if isinstance(piece, Notes) else read_notes(piece)
    kept = None
    if kept_rows is not None:
        kept, notes = _split_kept(np.asarray(piece), np.asarray(kept_rows, dtype=bool))
    table = notes.table
    everything = table if kept is None else np.concatenate([table, kept.table])  # what the axes cover
    music_seconds = max(notes.seconds, kept.seconds if kept is not None else 0.0)
    seconds = max(music_seconds, 1.0)
    width = float(np.clip(seconds * INCHES_PER_SECOND, MIN_WIDTH_INCHES, MAX_WIDTH_INCHES))
    figure = Figure(figsize=(width, HEIGHT_INCHES), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    groups = sorted({(int(t), int(p), bool(d)) for t, p, d in zip(table["track"], table["program"], table["is_drum"], strict=True)})
    palette = [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]]
    legend: list[tuple[int, Any, str]] = []  # (notes, artist, label)
    if kept is not None and len(kept):
        k = kept.table
        artist = PolyCollection(
            _rectangles(k["start_seconds"], k["end_seconds"], k["pitch"].astype(np.float64)), facecolors=KEPT_COLOUR, edgecolors="none"
        )
        axes.add_collection(artist)
        legend.append((len(everything), artist, f"kept ({len(k)} notes)"))  # listed first
    for i, (track, program, is_drum) in enumerate(groups):
        mine = table[(table["track"] == track) & (table["program"] == program) & (table["is_drum"] == is_drum)]
        if is_drum:
            artist = axes.scatter(mine["start_seconds"], mine["pitch"], marker="x", s=12, linewidths=0.8, color=DRUM_COLOUR, zorder=3)
        else:
            artist = PolyCollection(
                _rectangles(mine["start_seconds"], mine["end_seconds"], mine["pitch"].astype(np.float64)),
                facecolors=palette[i % len(palette)],
                edgecolors="none",
                alpha=0.85,
            )
            axes.add_collection(artist)
        legend.append((len(mine), artist, instrument_label(track, program, is_drum)))
    shown = sorted(legend, key=lambda entry: -entry[0])[:LEGEND_ENTRIES]
    handles, labels = [a for _, a, _ in shown], [label for _, _, label in shown]
    if len(legend) > len(shown):
        handles.append(Line2D([], [], linestyle="none"))
        labels.append(f"... {len(legend) - len(shown)} more")
    if len(everything):
        low, high = int(everything["pitch"].min()) - 2, int(everything["pitch"].max()) + 2
        axes.set_ylim(low, high)
        octaves = np.arange(-(-low // 12) * 12, high + 1, 12)
        axes.set_yticks(octaves, [f"C{c // 12 - 1}" for c in octaves])
        axes.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    else:
        axes.text(0.5, 0.5, "no notes", transform=axes.transAxes, ha="center", va="center")
    axes.set_xlim(0, seconds)
    axes.set_xlabel("seconds")
    axes.set_ylabel("pitch")
    axes.grid(True, alpha=0.3)
    axes.set_title(title or f"{len(everything)} notes, {music_seconds:.1f} s")
    figure.tight_layout()
    figure.savefig(os.fspath(path), format="png")
