"""Anticipation: kept events written ahead of their time, after the Anticipatory Music Transformer.

A model trained with ``midilm train --anticipation BEATS`` also reads *anticipated*
rows: an event the user keeps (a part to accompany, the music after a span to
rewrite) written up to BEATS beats before it sounds, so the model can plan
towards it. This module is the vocabulary block and the interleaving rule that
training and sampling share; it extends the v2 vocabulary (``midilm.vocab``)
without changing any of its ids.

An anticipated row is an event row whose first token is one of six ids after the
v2 vocabulary (:data:`ANTICIPATED_ID`, one per event type), whose ``time1`` holds
the whole beats from the current position (the onset of the last ordinary row)
to the event plus :data:`OFFSET_BEATS` (so an event a little in the past still
fits), whose ``time2`` is its place in the beat, and whose other tokens are the
event's own. Anticipated rows do not move the current position.

The rule: an anticipated row goes right after the first ordinary row whose onset
is at least the row's onset minus delta; rows still waiting when the ordinary
rows end follow them, in time order. Sampling applies it online (after each
ordinary row, the waiting rows whose time has come are written).
"""

from __future__ import annotations

import numpy as np

from midilm import vocab

# ----- the vocabulary block above the v2 ids -------------------------------------------------------

FIRST_ANTICIPATED_ID: int = vocab.VOCAB_SIZE
ANTICIPATED_ID: dict[str, int] = {name: FIRST_ANTICIPATED_ID + i for i, name in enumerate(vocab.EVENT_NAMES)}
"""Event name -> id of its anticipated form."""
VOCAB_SIZE: int = FIRST_ANTICIPATED_ID + len(ANTICIPATED_ID)
"""Output classes of a model trained with anticipation."""
OFFSET_BEATS: int = 64
"""Added to an anticipated row's beat offset: offsets -64..63 beats fit time1's 0..127."""
STEPS_PER_BEAT: int = vocab.PARAM_SIZES["time2"]
MAX_TIME1: int = vocab.PARAM_SIZES["time1"] - 1

assert VOCAB_SIZE == 3412, VOCAB_SIZE
assert min(ANTICIPATED_ID.values()) > max(vocab.PARAM_OFFSET.values())


def spec() -> dict:
    """What a checkpoint records of this block, so that loading can refuse other ids."""
    return {"anticipated_ids": dict(ANTICIPATED_ID), "offset_beats": OFFSET_BEATS, "vocab_size": VOCAB_SIZE}


def is_anticipated(first_tokens: np.ndarray) -> np.ndarray:
    """Which rows (given their first tokens) are anticipated rows."""
    first_tokens = np.asarray(first_tokens)
    return (first_tokens >= FIRST_ANTICIPATED_ID) & (first_tokens < VOCAB_SIZE)


def anticipated_row(row: np.ndarray, onset: int, current_beat: int) -> np.ndarray | None:
    """The anticipated form of an event row that sounds at ``onset`` (1/16 beats),
    written when the current position is in beat ``current_beat``; None when the
    offset does not fit."""
    offset = onset // STEPS_PER_BEAT - current_beat + OFFSET_BEATS
    if not 0 <= offset <= MAX_TIME1:
        return None
    out = np.array(row, dtype=vocab.TOKEN_DTYPE)
    out[0] = ANTICIPATED_ID[vocab.ID_EVENT[int(row[0])]]
    out[1] = vocab.PARAM_OFFSET["time1"] + offset
    out[2] = vocab.PARAM_OFFSET["time2"] + onset % STEPS_PER_BEAT
    return out


def placed_row(row: np.ndarray, onset: int, previous_beat: int) -> np.ndarray | None:
    """An ordinary event row moved to ``onset``, after an event in beat
    ``previous_beat``; None when the beat gap does not fit time1."""
    gap = onset // STEPS_PER_BEAT - previous_beat
    if not 0 <= gap <= MAX_TIME1:
        return None
    out = np.array(row, dtype=vocab.TOKEN_DTYPE)
    out[1] = vocab.PARAM_OFFSET["time1"] + gap
    out[2] = vocab.PARAM_OFFSET["time2"] + onset % STEPS_PER_BEAT
    return out


def ordinary_row(row: np.ndarray) -> np.ndarray:
    """The event row an anticipated row stands for (its time slots are not meaningful alone)."""
    out = np.array(row, dtype=vocab.TOKEN_DTYPE)
    if is_anticipated(out[:1])[0]:
        out[0] = vocab.EVENT_ID[vocab.EVENT_NAMES[int(out[0]) - FIRST_ANTICIPATED_ID]]
    return out


def stream_onsets(rows: np.ndarray) -> np.ndarray:
    """Onset in 1/16 beats of every row of a stream that may hold anticipated rows
    (rows that are not events take the current position)."""
    rows = np.asarray(rows)
    onsets = np.zeros(len(rows), dtype=np.int64)
    beat = position = 0
    time1, time2 = vocab.PARAM_OFFSET["time1"], vocab.PARAM_OFFSET["time2"]
    for i, row in enumerate(rows.tolist()):
        if vocab.FIRST_EVENT_ID <= row[0] <= vocab.LAST_EVENT_ID:
            beat += row[1] - time1
            position = beat * STEPS_PER_BEAT + row[2] - time2
            onsets[i] = position
        elif FIRST_ANTICIPATED_ID <= row[0] < VOCAB_SIZE:
            onsets[i] = (beat + row[1] - time1 - OFFSET_BEATS) * STEPS_PER_BEAT + row[2] - time2
        else:
            onsets[i] = position
    return onsets


def interleave(
    ordinary: np.ndarray, ordinary_onsets: np.ndarray, kept: np.ndarray, kept_onsets: np.ndarray, delta: int, *, start_beat: int = 0
) -> tuple[np.ndarray, int] | None:
    """Ordinary event rows (moved to their onsets) with the kept rows anticipated
    by ``delta`` (1/16 beats) after the rule of the module doc, continuing from a
    position in ``start_beat``. Returns the rows and how many of the kept rows
    they hold: those whose time came by the last ordinary row (a sampler's
    prompt; :func:`interleave_all` appends the rest). None when a time gap or an
    offset does not fit the tokens."""
    out: list[np.ndarray] = []
    beat = start_beat
    k = 0
    for row, onset in zip(ordinary, ordinary_onsets.tolist(), strict=True):
        placed = placed_row(row, onset, beat)
        if placed is None:
            return None
        out.append(placed)
        beat = onset // STEPS_PER_BEAT
        while k < len(kept) and int(kept_onsets[k]) - delta <= onset:
            anticipated = anticipated_row(kept[k], int(kept_onsets[k]), beat)
            if anticipated is None:
                return None
            out.append(anticipated)
            k += 1
    return (np.stack(out) if out else np.zeros((0, vocab.EVENT_LEN), dtype=vocab.TOKEN_DTYPE)), k


def interleave_all(
    ordinary: np.ndarray, ordinary_onsets: np.ndarray, kept: np.ndarray, kept_onsets: np.ndarray, delta: int
) -> np.ndarray | None:
    """:func:`interleave`, then the kept rows still waiting, in time order (the training form of a window)."""
    first = interleave(ordinary, ordinary_onsets, kept, kept_onsets, delta)
    if first is None:
        return None
    rows, k = first
    beat = int(ordinary_onsets[-1]) // STEPS_PER_BEAT if len(ordinary) else 0
    rest = [anticipated_row(row, int(onset), beat) for row, onset in zip(kept[k:], kept_onsets[k:].tolist(), strict=True)]
    if any(r is None for r in rest):
        return None
    return np.concatenate([rows, np.stack(rest)]) if rest else rows
