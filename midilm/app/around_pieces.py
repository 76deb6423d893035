"""One press of Write in the app's accompany-and-rewrite tab: the uploaded song, the task
chosen, the pieces written (MIDI, WAV, piano roll with kept notes in grey) for the page.
Nothing here imports gradio."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from midilm.app.checkpoints import ModelCache
from midilm.app.forms import check_prompt
from midilm.app.pieces import Generation, Piece, Progress
from midilm.errors import ConfigError, MidiFileError
from midilm.sample.accompany import accompaniment_task
from midilm.sample.around import AroundModel, load_song, write_around
from midilm.sample.around_files import write_pieces
from midilm.sample.config import SamplingConfig
from midilm.sample.infill import infill_task
from midilm.sample.song import Song

ACCOMPANY, INFILL = "accompany", "infill"


@dataclass
class AroundRequest:
    """What the tab asks for: the song and either the tracks to keep and the instruments to add,
    or a span (and its tracks) to rewrite; and the sampling settings and locks."""

    checkpoint: str
    song: Path
    task: str
    sampling: SamplingConfig
    keep: list[int]
    add: list[int]
    drums: str = ""
    start: float = 0.0
    end: float = 0.0
    unit: str = "seconds"
    tracks: list[int] | None = None


def describe_song(path: str | Path) -> tuple[str, list[tuple[str, int]]]:
    """The song's tracks as the page lists them, and (label, number) choices for the track pickers."""
    summary = check_prompt(path)
    try:
        tracks = Song.load(path).tracks()
    except ConfigError as exc:
        raise MidiFileError(Path(path).name, str(exc)) from exc
    lines = [f"**{Path(path).name}**: {summary.notes} notes, {summary.seconds:.1f} s", ""]
    lines += [f"- {track.describe()}" for track in tracks]
    return "\n".join(lines), [(track.describe(), track.track) for track in tracks if track.notes]


def write_request(models: ModelCache, request: AroundRequest, out_root: Path, progress: Progress | None = None) -> Generation:
    """Write the request's pieces into a new folder under ``out_root``."""
    check_prompt(request.song)
    around = AroundModel.of(models.get(request.checkpoint))
    song = load_song(request.song, around)
    if request.task == ACCOMPANY:
        if not request.keep:
            raise ConfigError("keep: tick at least one track to keep")
        add = ",".join(str(program) for program in request.add)
        task = accompaniment_task(
            song, ",".join(map(str, request.keep)), add, request.drums, disabled_channels=request.sampling.disable_channels
        )
        settings = {"keep": request.keep, "add": request.add, "drums": request.drums}
    else:
        tracks = ",".join(map(str, request.tracks)) if request.tracks else "all"
        task = infill_task(song, request.start, request.end, tracks, request.unit)
        settings = {"start": request.start, "end": request.end, "unit": request.unit, "tracks": tracks}
    total = task.budget()
    on_event = None if progress is None else lambda done: progress(done, total, "events")
    result = write_around(around, request.sampling, task, on_event=on_event)
    out_root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=out_root))
    record = {"checkpoint": around.source, "song": request.song.name, "task": request.task, **settings}
    on_piece = None if progress is None else lambda i, n: progress(i, n, "samples rendered")
    written = write_pieces(
        folder, result, record, seed=request.sampling.seed, audio=True, piano_roll=True, prefix=request.task, on_piece=on_piece
    )
    pieces = [Piece.of(i, sample) for i, sample in enumerate(written)]
    generation = result.generation
    return Generation(pieces, folder, generation.seconds, generation.events_per_s, generation.stop_reason)
