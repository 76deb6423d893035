"""Step 2: the reference's deduplicating event dict, in its insertion order."""

from __future__ import annotations

import numpy as np

from midilm.tokenizer.columns import Columns
from midilm.tokenizer.encoder.grouping import sort_groups
from midilm.tokenizer.encoder.table import Batch
from midilm.tokenizer.score import CONTROL, NOTE

_FIRST_KEY = np.array([True, True, True, False, False, False])
"""Kinds keyed by their channel (param0) besides kind, time and track."""
_SECOND_KEY = np.array([True, False, True, False, False, False])
"""Kinds keyed by param1 too: a note's pitch, a control change's controller."""
assert _SECOND_KEY[NOTE] and _SECOND_KEY[CONTROL]


def dedup_key(events: Columns) -> tuple[np.ndarray, np.ndarray]:
    """The two key fields besides kind, time and track that make events
    "the same" for the reference: (channel, pitch) of notes, (channel,
    controller) of control changes, channel of program changes."""
    kind = events.kind
    return np.where(_FIRST_KEY[kind], events.param0, 0), np.where(_SECOND_KEY[kind], events.param1, 0)


def deduplicate(events: Columns, batch: Batch) -> None:
    """Step 2, in place: the reference's event dict, in its insertion order.

    A later event with the same key replaces the earlier one in its place. A
    note first shortens the previous note of the same (track, channel,
    pitch) to at most the gap between their starts; a note shortened to 0 is
    removed from the dict, so its successor is inserted afresh at the end.
    """
    count = len(events)
    if count < 2:
        return
    file, track, time, kind = events.file, events.track, events.time, events.kind
    popped = None
    notes = (kind == NOTE).nonzero()[0]
    if len(notes) > 1:
        voice_order, _, voice_ends = sort_groups(*batch.keys(file[notes], track[notes], events.param0[notes], events.param1[notes]))
        by_voice = notes[voice_order]
        same_voice = ~voice_ends[:-1]
        earlier, later = by_voice[:-1][same_voice], by_voice[1:][same_voice]
        gap = time[later] - time[earlier]
        duration = events.param3[earlier]
        events.param3[earlier] = np.where(gap > 0, np.minimum(duration, gap), duration)
        if (gap <= 0).any():
            popped = np.zeros(count, bool)
            popped[earlier[gap <= 0]] = True

    first, second = dedup_key(events)
    # the score lists each track's events about in time order: the sort has little to do
    order, starts, ends = sort_groups(*batch.keys(file, track, time, kind, first, second), nearly_sorted=True)
    if popped is None:
        if ends.all():
            return
        popped = np.zeros(count, bool)
    popped_sorted = popped[order]
    chain_start = starts.copy()
    chain_start[1:] |= popped_sorted[:-1]
    chain_first = order[np.maximum.accumulate(np.where(chain_start, np.arange(count), 0))]
    survives = ends & ~popped_sorted
    batch.drop("note_overlap", file, popped)
    batch.drop("duplicate", file, order[~survives & ~popped_sorted])
    place = chain_first[survives]
    events.keep(order[survives][np.argsort(place, kind="stable")])
