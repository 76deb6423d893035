"""Step 2: the reference's deduplicating event dict, in its insertion order."""

from __future__ import annotations

import numpy as np

from midilm.tokenizer.encoder.grouping import sort_groups
from midilm.tokenizer.encoder.table import FILE, POSITION, TIME, Batch
from midilm.tokenizer.score import CONTROL, KIND, NOTE, PARAM0, PARAM1, PARAM3, TRACK


def dedup_key(events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two key fields besides kind, time and track that make events
    "the same" for the reference: (channel, pitch) of notes, (channel,
    controller) of control changes, channel of program changes."""
    kind = events[KIND]
    first = np.where(kind <= CONTROL, events[PARAM0], 0)
    second = np.where((kind == NOTE) | (kind == CONTROL), events[PARAM1], 0)
    return first, second


def deduplicate(events: np.ndarray, batch: Batch) -> np.ndarray:
    """Step 2: the reference's event dict, in its insertion order.

    A later event with the same key replaces the earlier one in its place. A
    note first shortens the previous note of the same (track, channel,
    pitch) to at most the gap between their starts; a note shortened to 0 is
    removed from the dict, so its successor is inserted afresh at the end.
    """
    count = events.shape[1]
    if count < 2:
        return events
    popped = np.zeros(count, bool)
    notes = (events[KIND] == NOTE).nonzero()[0]
    if len(notes) > 1:
        voice_order, _, voice_ends = sort_groups(events[FILE, notes], events[TRACK, notes], events[PARAM0, notes], events[PARAM1, notes])
        by_voice = notes[voice_order]
        same_voice = ~voice_ends[:-1]
        earlier, later = by_voice[:-1][same_voice], by_voice[1:][same_voice]
        gap = events[TIME, later] - events[TIME, earlier]
        duration = events[PARAM3, earlier]
        events[PARAM3, earlier] = np.where(gap > 0, np.minimum(duration, gap), duration)
        popped[earlier[gap <= 0]] = True

    first, second = dedup_key(events)
    file, track, time, kind = events[FILE], events[TRACK], events[TIME], events[KIND]
    # the score lists each track's events about in time order: the sort has little to do
    order, starts, ends = sort_groups(file, track, time, kind, first, second, nearly_sorted=True)
    if ends.all() and not popped.any():
        return events
    popped_sorted = popped[order]
    chain_start = starts.copy()
    chain_start[1:] |= popped_sorted[:-1]
    chain_first = order[np.maximum.accumulate(np.where(chain_start, np.arange(count), 0))]
    survives = ends & ~popped_sorted
    batch.drop("note_overlap", file[popped])
    batch.drop("duplicate", file[order[~survives & ~popped_sorted]])
    place = chain_first[survives]
    by_place = np.argsort(place, kind="stable")
    result = events.take(order[survives][by_place], axis=1)
    result[POSITION] = place[by_place]
    return result
