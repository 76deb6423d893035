"""``midilm evaluate --task accompany|infill``: how well a model writes a held-out part given the rest.

Each multi-track file of the split gives cases: *accompany* holds out one note
track at a time (a chorale voice; its instrument is given, as ``accompany --add``
gives it); *infill* holds out every note of a span of :data:`SPAN_BARS` bars in
the middle of the piece. A case is measured under three procedures, each as the
sampler runs it (:mod:`midilm.evaluate.scoring`):

- ``interleave`` (a): the kept music placed as its time comes (any model);
- ``anticipate`` (b): the kept music read ahead (models trained with ``--anticipation``);
- ``unconditional`` (c), the baseline: the same with nothing kept but the tempo,
  time and key signatures (and, for infill, the music before the span): the
  part written as a plain continuation.

The figure is nats per held-out event: every token the procedure draws (the
held-out events, and for ``interleave`` its choices to reach the next kept
event), over the held-out events. Notes that would sound past the span are
counted as ending with it, in every procedure. With ``samples``, each procedure
also writes the part for the first cases, and the music statistics of what it
wrote are compared with the held-out parts'.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from midilm import anticipation, vocab
from midilm.errors import ConfigError
from midilm.notes import part_notes
from midilm.sample.around import AroundModel, Task, write_around
from midilm.sample.infill import infill_task, voice_of_track
from midilm.sample.instruments import InstrumentPlan
from midilm.sample.rules import LockRules
from midilm.sample.song import STEPS_PER_BEAT, Song

TASKS = ("accompany", "infill")
PROCEDURES = ("interleave", "anticipate", "unconditional")
SPAN_BARS = 4
_PATCH = vocab.EVENT_ID["patch_change"]
_NOTE = vocab.EVENT_ID["note"]
_DURATION_SLOT = 1 + vocab.EVENT_PARAMS["note"].index("duration")


@dataclass
class Case:
    """One held-out part: the task that writes it, and which song rows it holds."""

    name: str
    task: Task
    held_out: np.ndarray

    def baseline(self) -> Task:
        """The same part with nothing kept after its start but tempo, time and key signatures."""
        song, task = self.task.song, self.task
        keep = task.keep & (song.is_meta | (song.onsets < task.own_from))
        return dataclasses.replace(task, keep=keep)


def accompany_cases(song: Song) -> list[Case]:
    """One case per note track of a file with two or more."""
    tracks = [t.track for t in song.tracks() if t.notes]
    if len(tracks) < 2:
        return []
    cases = []
    for track in tracks:
        mine = song.is_event & ~song.is_meta & (song.track == track)
        given = mine & (song.rows[:, 0] == _PATCH) & (song.onsets == 0)  # its instrument, as --add gives it
        plan = InstrumentPlan((voice_of_track(song, track, 0),))
        task = Task(song, song.is_event & ~mine, plan, 0, song.end(), True, song.rows[given], shares=False)
        cases.append(Case(f"{song.name} track {track}", task, mine & ~given))
    return cases


def infill_cases(song: Song) -> list[Case]:
    """The span of :data:`SPAN_BARS` bars around the middle of a multi-track file (every note track rewritten)."""
    if sum(1 for t in song.tracks() if t.notes) < 2:
        return []
    bars = 1
    while song.steps_at(bars + 1, "bars", "bars") < song.end():
        bars += 1
    if bars < SPAN_BARS + 2:
        return []
    first = max(2, (bars - SPAN_BARS) // 2 + 1)
    task = infill_task(song, first, first + SPAN_BARS, "all", "bars")
    return [Case(f"{song.name} bars {first}-{first + SPAN_BARS - 1}", task, song.is_event & ~task.keep)]


def clipped_song(case: Case) -> Case:
    """The case with held-out notes ending by the task's limit (as the procedures write them)."""
    song, task = case.task.song, case.task
    rows = song.rows.copy()
    notes = case.held_out & (rows[:, 0] == _NOTE)
    duration = rows[notes, _DURATION_SLOT].astype(np.int64) - vocab.PARAM_OFFSET["duration"]
    rows[notes, _DURATION_SLOT] = vocab.PARAM_OFFSET["duration"] + np.minimum(duration, task.limit - song.onsets[notes])
    clipped = Song.from_tokens(rows, song.name)
    return Case(case.name, dataclasses.replace(task, song=clipped), case.held_out)


def procedure_stream(task: Task, held_out: np.ndarray, mode: str, delta: int) -> tuple[np.ndarray, int, Any]:
    """The token stream a procedure writes when its drawn part is the held-out one:
    ``(rows, prompt length, kept events the timeline places)``."""
    song = task.song
    start, stream = task.start(mode, delta)
    if mode == "interleave":
        after = song.onsets > task.own_from if len(task.new_rows) else song.onsets >= task.own_from  # what the prompt does not hold
        kept = np.flatnonzero(task.keep & song.is_event & after & (song.onsets < task.limit))
        own = np.flatnonzero(held_out)
        order = sorted([(int(song.onsets[i]), 0, int(i)) for i in kept] + [(int(song.onsets[i]), 1, int(i)) for i in own])
        previous = int(anticipation.stream_onsets(start)[-1]) // STEPS_PER_BEAT
        rows = []
        for onset, _, i in order:
            rows.append(anticipation.placed_row(song.rows[i], onset, previous))
            previous = onset // STEPS_PER_BEAT
        return np.concatenate([start, np.stack(rows)]) if rows else start, len(start), stream
    before = task.keep & song.is_event & (song.onsets < task.own_from)
    ordinary = np.concatenate([song.rows[before], task.new_rows, song.rows[held_out]])
    onsets = np.concatenate([song.onsets[before], np.full(len(task.new_rows), task.own_from), song.onsets[held_out]])
    controls = song.kept(task.keep & (song.onsets >= task.own_from), sounding=False)
    interleaved = anticipation.interleave(ordinary, onsets.astype(np.int64), controls.rows, controls.onsets, delta)
    if interleaved is None:
        raise ConfigError(f"{song.name}: cannot be written with anticipated rows (a gap of 128 beats or more)")
    return np.concatenate([start[:1], interleaved[0]]), len(start), stream


def expressible(around: AroundModel, case: Case, procedure: str) -> bool:
    """Whether the procedure can write the case's stream: anticipated rows reach at most
    :data:`midilm.anticipation.OFFSET_BEATS` beats back, so a held-out part that rests
    longer (a trumpet that plays only the last bars of a cantata chorale) cannot hold the
    kept music that sounds meanwhile. Such cases are left out of every procedure alike."""
    if procedure != "anticipate":
        return True
    try:
        procedure_stream(case.task, case.held_out, "anticipate", around.anticipation_steps)
    except ConfigError:
        return False
    return True


def score_case(around: AroundModel, case: Case, procedure: str, window_events: int) -> dict[str, float]:
    """Nats of a case's held-out part under one procedure."""
    from midilm.evaluate.scoring import replay, stream_logits

    task = case.baseline() if procedure == "unconditional" else case.task
    mode = "interleave" if procedure == "unconditional" else procedure
    rows, prompt, stream = procedure_stream(task, case.held_out, mode, around.anticipation_steps)
    timeline = task.timeline(LockRules(), 1, around, mode, rows[:prompt], stream)
    logits = stream_logits(around.model, rows, window_events)
    measured = replay(rows, prompt, logits, [timeline], around.model.config.vocab_size)
    return {"nats": measured.nats, "events": int(case.held_out.sum()), "impossible_tokens": measured.impossible}


def evaluate_around(
    around: AroundModel, store: Any, task_name: str, *, split: str, pieces: int, window_events: int, samples: int, sampling: Any
) -> dict[str, Any]:
    """Every procedure the model supports on up to ``pieces`` multi-track files of ``split``."""
    from midilm.evaluate.compare import compare_sets
    from midilm.evaluate.features import piece_features

    make_cases = accompany_cases if task_name == "accompany" else infill_cases
    paths = {int(r["index"]): str(r["path"]) for r in store.records if r.get("index") is not None}
    cases: list[Case] = []
    used_files = 0
    for index in store.split(split):
        found = make_cases(Song.from_tokens(np.asarray(store.tokens(int(index))), paths.get(int(index), f"file {int(index)}")))
        if found:
            cases.extend(clipped_song(c) for c in found)
            used_files += 1
        if used_files >= pieces:
            break
    if not cases:
        raise ConfigError(f"{store.path}: the {split} split has no multi-track file to hold a part out of")
    procedures = [p for p in PROCEDURES if p != "anticipate" or around.anticipation_steps]
    inexpressible = [c.name for c in cases if not all(expressible(around, c, p) for p in procedures)]
    cases = [c for c in cases if c.name not in inexpressible]
    if not cases:
        raise ConfigError(
            f"{store.path}: no part of the {split} split can be written by every procedure ({', '.join(inexpressible)} cannot)"
        )
    result: dict[str, Any] = {
        "task": task_name,
        "split": split,
        "files": used_files,
        "cases": len(cases),
        "left_out": inexpressible,
        "procedures": {},
    }
    for procedure in procedures:
        scores = [score_case(around, case, procedure, window_events) for case in cases]
        nats, events = sum(s["nats"] for s in scores), sum(s["events"] for s in scores)
        result["procedures"][procedure] = {
            "nats_per_event": nats / events,
            "events": events,
            "impossible_tokens": sum(s["impossible_tokens"] for s in scores),
        }
    if samples:
        chosen = cases[:samples]
        held = [part_notes(c.task.song.rows, c.held_out)[0] for c in chosen]
        result["music"] = {}
        for procedure in procedures:
            written = []
            for i, case in enumerate(chosen):
                task = case.baseline() if procedure == "unconditional" else case.task
                mode = "interleave" if procedure == "unconditional" else procedure
                one = dataclasses.replace(sampling, num_samples=1, seed=sampling.seed + i)
                piece = write_around(around, one, task, mode=mode)
                written.append(part_notes(piece.samples[0], piece.kept_rows[0])[1])
            result["music"][procedure] = compare_sets(piece_features(written), piece_features(held))
    return result
