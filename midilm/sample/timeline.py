"""Kept music and the model's own events on one time line: the constraint behind
locks, accompaniment and infilling, for every architecture.

:class:`Timeline` is a :class:`~midilm.sample.sampler.Constraint`. Each sample
has a position (the onset of its last ordinary row) that only moves forward;
the model's own events obey :class:`~midilm.sample.rules.EventRules` (locks and
the instrument plan) and may start from ``own_from`` on. Kept events (rows
given verbatim, with their onsets) reach the sample in one of two ways:

- ``interleave`` (any model): kept rows are written when their time comes. The
  model may not write past the next kept event's onset: its time slots are
  masked to it, and the probability of any later onset is folded onto that
  onset, where the row can only be the kept event itself (so "nothing of mine
  before the next kept note" is how the model says "wait"). Kept rows at the
  current position are forced, before the model's own events at that time.
- ``anticipate`` (models trained with ``--anticipation``): kept rows are written
  as anticipated rows ``delta`` ahead of their time (:mod:`midilm.anticipation`),
  so the model sees what is coming; its own events move freely.

``limit`` bounds the part the model writes: own notes end by it; an own event
at or past it ends the sample (an *overflow*, dropped from the result), as may
the end token. With ``fill_to_limit`` neither may happen before the kept events
before the limit are placed and the music reaches the limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from midilm import anticipation, vocab
from midilm.sample.rules import EventRules

STEPS_PER_BEAT = vocab.PARAM_SIZES["time2"]
TIME1_VALUES = vocab.PARAM_SIZES["time1"]
REACH = TIME1_VALUES * STEPS_PER_BEAT
"""Onsets one row can reach from the current beat (time1 0..127, time2 0..15)."""
MODES = ("interleave", "anticipate")
EOS_ROW = np.array([vocab.EOS] + [vocab.PAD] * (vocab.EVENT_LEN - 1), dtype=vocab.TOKEN_DTYPE)
NO_LIMIT = np.iinfo(np.int64).max // 4
MOST_NOTES_AT_ONCE = 12
"""Notes one voice may start at one onset: more than a pianist's chord, and a stop for a model
that keeps adding notes where it would rather have written another voice."""


@dataclass
class KeptEvents:
    """Event rows kept verbatim (plain v2 ids) and their onsets in 1/16 beats, in time order."""

    rows: np.ndarray
    onsets: np.ndarray

    @classmethod
    def empty(cls) -> KeptEvents:
        return cls(np.zeros((0, vocab.EVENT_LEN), dtype=vocab.TOKEN_DTYPE), np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.rows)

    def before(self, onset: int) -> KeptEvents:
        """The kept events that start before ``onset``."""
        keep = self.onsets < onset
        return KeptEvents(self.rows[keep], self.onsets[keep])


@dataclass
class ProtectedNotes:
    """Kept notes a new note must not restart while they sound (same track, channel
    and pitch): decoding would cut them short."""

    track: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    channel: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pitch: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    start: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    end: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def sounding_pitches(self, track: int, channel: int, onset: int) -> np.ndarray:
        hit = (self.track == track) & (self.channel == channel) & (self.start <= onset) & (self.end > onset)
        return self.pitch[hit]


@dataclass
class _Step:
    """What one sample may do at the current event step (when nothing is forced)."""

    types: list[str]
    low: int
    high: int
    """own events' onsets: [low, high] (high < low: none)"""
    adopt: int = -1
    """index of the kept event the row may become (interleave), -1: none"""
    overflow: bool = False
    eos: bool = False
    onsets: np.ndarray | None = None
    """allowed onsets of the chosen event type, from the current beat (REACH bools)"""


class Timeline:
    """The constraint of the module doc, for a batch of ``batch`` samples that start
    from the rows ``start`` (a model of ``vocab_size`` output classes)."""

    def __init__(
        self,
        rules: EventRules,
        start: np.ndarray,
        batch: int,
        vocab_size: int,
        *,
        kept: KeptEvents | None = None,
        mode: str = "interleave",
        delta: int = 0,
        own_from: int = 0,
        limit: int | None = None,
        fill_to_limit: bool = False,
        protected: ProtectedNotes | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"timeline mode must be one of {MODES}, got {mode!r}")
        self.rules, self.batch, self.vocab_size, self.mode, self.delta = rules, batch, vocab_size, mode, delta
        self.kept = kept if kept is not None else KeptEvents.empty()
        self.own_from, self.fill_to_limit = own_from, fill_to_limit
        self.limit = NO_LIMIT if limit is None else limit
        self.protected = protected or ProtectedNotes()
        before_limit = self.kept.onsets[self.kept.onsets < self.limit]
        self.last_kept_before_limit = int(before_limit[-1]) if len(before_limit) else -1
        self.stream_kept = len(before_limit) if mode == "interleave" else len(self.kept)
        """Kept rows that go through the decoder (interleave: those before the limit)."""
        self.beat = np.zeros(batch, dtype=np.int64)
        self.position = np.zeros(batch, dtype=np.int64)
        self.next_kept = np.zeros(batch, dtype=np.int64)
        self.reach = np.zeros(batch, dtype=np.int64)
        """the latest end of any note so far (for ``fill_to_limit``)"""
        self.started = np.zeros(batch, dtype=bool)
        self.ended = np.zeros(batch, dtype=bool)
        self.overflowed = np.zeros(batch, dtype=bool)
        self.starting: list[set[tuple[int, int, int]]] = [set() for _ in range(batch)]
        """per sample, (part, channel, pitch) of the notes that start at its position: a new note does not double one"""
        self.own: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(batch)]
        """per sample, (onset, row) of each own event, overflow excluded"""
        self._steps: list[_Step | None] = [None] * batch
        for row in np.asarray(start):
            for b in range(batch):
                self._observe_row(b, row, prompt=True)

    # ----- the Constraint protocol ---------------------------------------------------------------

    def forced_rows(self) -> tuple[np.ndarray, np.ndarray] | None:
        which = np.zeros(self.batch, dtype=bool)
        rows = np.zeros((self.batch, vocab.EVENT_LEN), dtype=np.int64)
        for b in range(self.batch):
            self._steps[b] = None
            if self.ended[b]:
                continue
            row = EOS_ROW if self.overflowed[b] else self._due_row(b)
            if row is None:
                step = self._step(b)
                if step.types or step.adopt >= 0 or step.eos:
                    self._steps[b] = step
                    continue
                row = EOS_ROW  # nothing may come next: end the piece rather than break a rule
            which[b], rows[b] = True, row
        return (which, rows) if which.any() else None

    def slot_mask(self, slot: int, row: np.ndarray, event_index: np.ndarray) -> np.ndarray | None:
        allowed = None
        chosen = row[:, :slot]
        for b, step in enumerate(self._steps):
            if step is None:
                continue
            ids = self._allowed_ids(b, step, slot, chosen[b])
            if ids is None or not len(ids):  # none left cannot happen by construction; never break the sampler over it
                continue
            if allowed is None:
                allowed = np.ones((self.batch, self.vocab_size), dtype=bool)
            allowed[b] = False
            allowed[b, ids] = True
        if allowed is None:
            return None
        return np.where(allowed, 0.0, -np.inf).astype(np.float32)

    def logit_bias(self, slot: int, row: np.ndarray, event_index: np.ndarray, logits: np.ndarray) -> np.ndarray | None:
        """Fold the probability of onsets past the next kept event onto its onset (interleave)."""
        if slot not in (1, 2):
            return None
        bias = None
        chosen = row[:, :slot]
        for b, step in enumerate(self._steps):
            if step is None or step.adopt < 0 or vocab.ID_EVENT.get(int(chosen[b, 0])) != self._kept_name(step.adopt):
                continue
            target = int(self.kept.onsets[step.adopt])
            if slot == 1:
                value = target // STEPS_PER_BEAT - int(self.beat[b])
                first, size = vocab.PARAM_OFFSET["time1"], TIME1_VALUES
            else:
                if int(chosen[b, 1]) - vocab.PARAM_OFFSET["time1"] != target // STEPS_PER_BEAT - int(self.beat[b]):
                    continue
                value = target % STEPS_PER_BEAT
                first, size = vocab.PARAM_OFFSET["time2"], STEPS_PER_BEAT
            later = logits[b, first + value : first + size].astype(np.float64)
            if bias is None:
                bias = np.zeros((self.batch, logits.shape[-1]), dtype=np.float32)
            bias[b, first + value] = np.logaddexp.reduce(later) - later[0]
        return bias

    def observe(self, rows: np.ndarray, active: np.ndarray) -> None:
        for b in np.flatnonzero(active):
            self._observe_row(int(b), rows[b], prompt=False)

    # ----- results -------------------------------------------------------------------------------

    def own_events(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``b``'s own event rows and their onsets (overflow excluded)."""
        if not self.own[b]:
            return np.zeros((0, vocab.EVENT_LEN), dtype=vocab.TOKEN_DTYPE), np.zeros(0, dtype=np.int64)
        onsets, rows = zip(*self.own[b], strict=True)
        return np.stack(rows).astype(vocab.TOKEN_DTYPE), np.array(onsets, dtype=np.int64)

    # ----- state ---------------------------------------------------------------------------------

    def _observe_row(self, b: int, row: np.ndarray, *, prompt: bool) -> None:
        first = int(row[0])
        if first == vocab.EOS:
            self.ended[b] = True
            return
        if anticipation.is_anticipated(row[:1])[0]:
            k = int(self.next_kept[b])
            self._record(b, self.kept.rows[k], int(self.kept.onsets[k]), own=False)
            self.next_kept[b] += 1
            return
        if not vocab.FIRST_EVENT_ID <= first <= vocab.LAST_EVENT_ID:
            return
        self.beat[b] += int(row[1]) - vocab.PARAM_OFFSET["time1"]
        onset = int(self.beat[b]) * STEPS_PER_BEAT + int(row[2]) - vocab.PARAM_OFFSET["time2"]
        if onset != int(self.position[b]):
            self.starting[b].clear()
        self.position[b] = onset
        self.started[b] = True
        self.rules.forget_before(b, onset)
        if self._is_next_kept(b, row, onset):
            self.next_kept[b] += 1
            self._record(b, row, onset, own=False)
        elif prompt:
            self._record(b, row, onset, own=False)
        elif onset >= self.limit:
            self.overflowed[b] = True
        else:
            self._record(b, row, onset, own=True)
            self.own[b].append((onset, np.array(row, dtype=vocab.TOKEN_DTYPE)))

    def _record(self, b: int, row: np.ndarray, onset: int, *, own: bool) -> None:
        self.rules.record(b, row, onset, own=own)
        if int(row[0]) == vocab.EVENT_ID["note"]:
            _, values = vocab.decode_event(row)
            self.reach[b] = max(int(self.reach[b]), onset + values["duration"])
            if onset == int(self.position[b]):
                self.starting[b].add((self.rules.part_of(values), values["channel"], values["pitch"]))

    def _is_next_kept(self, b: int, row: np.ndarray, onset: int) -> bool:
        k = int(self.next_kept[b])
        if self.mode != "interleave" or k >= self.stream_kept or int(self.kept.onsets[k]) != onset:
            return False
        expected = self.kept.rows[k]
        return int(row[0]) == int(expected[0]) and np.array_equal(row[3:], expected[3:])

    def _kept_name(self, k: int) -> str:
        return vocab.ID_EVENT[int(self.kept.rows[k, 0])]

    # ----- what comes next -----------------------------------------------------------------------

    def _due_row(self, b: int) -> np.ndarray | None:
        """The kept row that must be written now, if any."""
        k = int(self.next_kept[b])
        if k >= self.stream_kept:
            return None
        onset = int(self.kept.onsets[k])
        if self.mode == "interleave":
            if onset > int(self.position[b]):
                return None
            return anticipation.placed_row(self.kept.rows[k], onset, int(self.beat[b]))
        if not self.started[b] or onset - self.delta > int(self.position[b]):
            return None
        row = anticipation.anticipated_row(self.kept.rows[k], onset, int(self.beat[b]))
        if row is None:  # the model passed it by more than the offset allows (it may not: see _step)
            raise AssertionError(f"kept event at {onset} cannot be anticipated from beat {int(self.beat[b])}")
        return row

    def _may_end(self, b: int) -> bool:
        if not self.rules.may_end(b):
            return False
        if not self.fill_to_limit:
            return True
        placed = int(self.next_kept[b]) >= self.stream_kept if self.mode == "interleave" else True
        return placed and int(self.position[b]) >= self.last_kept_before_limit and int(self.reach[b]) >= self.limit

    def _step(self, b: int) -> _Step:
        position = int(self.position[b])
        low = max(position, self.own_from)
        high = min(self.limit - 1, int(self.beat[b]) * STEPS_PER_BEAT + REACH - 1)
        adopt = -1
        k = int(self.next_kept[b])
        if self.mode == "interleave" and k < self.stream_kept:
            adopt = k
            high = min(high, int(self.kept.onsets[k]))
        elif self.mode == "anticipate" and k < len(self.kept):
            waiting = (int(self.kept.onsets[k]) // STEPS_PER_BEAT + anticipation.OFFSET_BEATS) * STEPS_PER_BEAT
            high = min(high, waiting + STEPS_PER_BEAT - 1)
        if self._crowded_voices(b) == len(self.rules.plan.voices if self.rules.plan else ()) > 0:
            low = max(low, position + 1)  # every voice has started its most notes here: move on
        ending = self._may_end(b)
        overflow = ending and self.limit < NO_LIMIT and adopt < 0
        types = self.rules.event_types(b, low, high)
        if overflow:
            types = sorted(set(types) | set(self.rules.event_types(b, self.limit, self.limit)), key=vocab.EVENT_NAMES.index)
        return _Step(types, low, high, adopt, overflow, ending)

    def _crowded(self, b: int) -> set[tuple[int, int]]:
        """(part, channel) pairs that have started :data:`MOST_NOTES_AT_ONCE` notes at the current position."""
        counts: dict[tuple[int, int], int] = {}
        for part, channel, _ in self.starting[b]:
            counts[part, channel] = counts.get((part, channel), 0) + 1
        return {key for key, count in counts.items() if count >= MOST_NOTES_AT_ONCE}

    def _crowded_voices(self, b: int) -> int:
        """How many voices of the plan are crowded at the current position."""
        plan, crowded = self.rules.plan, self._crowded(b)
        if plan is None or not crowded:
            return 0
        return sum((self.rules.part_of({"track": v.track}), v.channel) in crowded for v in plan.voices)

    def _onsets(self, b: int, step: _Step, name: str) -> np.ndarray:
        """Allowed onsets of an own ``name`` event (or the kept one), from the current beat."""
        base = int(self.beat[b]) * STEPS_PER_BEAT
        allowed = np.zeros(REACH, dtype=bool)
        if name in step.types:
            high = step.high - 1 if step.adopt >= 0 and name == self._kept_name(step.adopt) else step.high
            if high >= step.low:
                window = self.rules.note_onsets(b, step.low, high) if name == "note" else np.ones(high - step.low + 1, dtype=bool)
                allowed[step.low - base : high - base + 1] = window
            if step.overflow and self.limit - base < REACH:
                allowed[max(self.limit - base, 0) :] = True
        if step.adopt >= 0 and name == self._kept_name(step.adopt):
            allowed[int(self.kept.onsets[step.adopt]) - base] = True
        return allowed

    def _allowed_ids(self, b: int, step: _Step, slot: int, chosen: np.ndarray) -> np.ndarray | None:
        """Token ids sample ``b`` may write at ``slot`` given its row so far; None: no rule."""
        if slot == 0:
            ids = [vocab.EVENT_ID[name] for name in step.types]
            if step.adopt >= 0:
                ids.append(int(self.kept.rows[step.adopt, 0]))
            if step.eos:
                ids.append(vocab.EOS)
            return np.array(sorted(set(ids)), dtype=np.int64)
        name = vocab.ID_EVENT.get(int(chosen[0]))
        if name is None or slot > len(vocab.EVENT_PARAMS[name]):
            return None
        base = int(self.beat[b]) * STEPS_PER_BEAT
        if slot == 1:
            step.onsets = self._onsets(b, step, name)
            beats = np.flatnonzero(step.onsets.reshape(TIME1_VALUES, STEPS_PER_BEAT).any(axis=1))
            return vocab.PARAM_OFFSET["time1"] + beats
        time1 = int(chosen[1]) - vocab.PARAM_OFFSET["time1"]
        if slot == 2:
            assert step.onsets is not None
            steps = np.flatnonzero(step.onsets[time1 * STEPS_PER_BEAT : (time1 + 1) * STEPS_PER_BEAT])
            return vocab.PARAM_OFFSET["time2"] + steps
        onset = base + time1 * STEPS_PER_BEAT + int(chosen[2]) - vocab.PARAM_OFFSET["time2"]
        if step.adopt >= 0 and name == self._kept_name(step.adopt) and onset == int(self.kept.onsets[step.adopt]):
            return np.array([int(self.kept.rows[step.adopt, slot])], dtype=np.int64)
        if onset >= self.limit:
            return None  # an overflow: the sample ends with it and the row is dropped
        param = vocab.EVENT_PARAMS[name][slot - 1]
        given = {p: int(chosen[s]) - vocab.PARAM_OFFSET[p] for s, p in enumerate(vocab.EVENT_PARAMS[name][: slot - 1], start=1)}
        values = self.rules.values(b, name, param, given, onset)
        if name == "note" and param in ("track", "channel") and values is not None and onset == int(self.position[b]):
            values = self._without_crowded(b, param, given, values)
        if name == "note" and param == "pitch":
            sounding = self.protected.sounding_pitches(given["track"], given["channel"], onset).tolist()
            if onset == int(self.position[b]):
                part = self.rules.part_of(given)
                sounding += [pitch for p, channel, pitch in self.starting[b] if (p, channel) == (part, given["channel"])]
            if sounding:
                values = np.ones(vocab.PARAM_SIZES["pitch"], dtype=bool) if values is None else values.copy()
                values[sounding] = False
        if name == "note" and param == "duration" and self.limit < NO_LIMIT:
            values = np.zeros(vocab.PARAM_SIZES["duration"], dtype=bool)
            values[: min(self.limit - onset, vocab.PARAM_SIZES["duration"] - 1) + 1] = True
        if values is None:
            return None
        return vocab.PARAM_OFFSET[param] + np.flatnonzero(values)

    def _without_crowded(self, b: int, param: str, given: dict[str, int], values: np.ndarray) -> np.ndarray:
        """Track or channel values without the voices crowded at the current position (when another is left)."""
        crowded = self._crowded(b)
        if not crowded or self.rules.plan is None:
            return values
        out = values.copy()
        for voice in self.rules.plan.voices:
            part = self.rules.part_of({"track": voice.track if param == "track" else given["track"]})
            if (part, voice.channel) in crowded:
                out[voice.track if param == "track" else voice.channel] = False
        return out if out.any() else values
