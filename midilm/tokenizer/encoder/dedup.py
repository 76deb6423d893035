"""Step 2: the reference's deduplicating event dict, in its insertion order."""

from __future__ import annotations

import numpy as np

from midilm.tokenizer.columns import Columns
from midilm.tokenizer.encoder.grouping import sort_groups
from midilm.tokenizer.encoder.table import Batch
from midilm.tokenizer.score import CONTROL, NOTE


def dedup_key(events: Columns) -> tuple[np.ndarray, np.ndarray]:
    """The two key fields besides kind, time and track that make events
    "the same" for the reference: (channel, pitch) of notes, (channel,
    controller) of control changes, channel of program changes."""
    kind = events.kind
    return np.where(kind <= CONTROL, events.param0, 0), np.where((kind == NOTE) | (kind == CONTROL), events.param1, 0)


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
    popped = _shorten_overlaps(events, batch)
    # when each pitch's notes start at times all different (most files), only settings can share a key
    rows = (events.kind != NOTE).nonzero()[0] if popped is None else np.arange(count)
    keyed = events.take(rows) if popped is None else events
    # the score lists each track's events about in time order: the sort has little to do
    order, starts, ends = sort_groups(*batch.keys(keyed.file, keyed.track, keyed.time, keyed.kind, *dedup_key(keyed)))
    if ends.all() and popped is None:
        return
    order = rows[order]
    popped_sorted = np.zeros(len(order), bool) if popped is None else popped[order]
    chain_start = starts
    chain_start[1:] |= popped_sorted[:-1]
    chain_first = order[np.maximum.accumulate(np.where(chain_start, np.arange(len(order)), 0))]
    survives = ends & ~popped_sorted
    if popped is not None:
        batch.drop("note_overlap", events.file, popped)
    batch.drop("duplicate", events.file, order[~survives & ~popped_sorted])
    # each survivor takes the place of its chain's first member; the others go
    place = np.arange(count)
    place[order[survives]] = chain_first[survives]
    kept = np.ones(count, bool)
    kept[order[~survives]] = False
    kept = kept.nonzero()[0]
    events.keep(kept[np.argsort(place[kept], kind="stable")])


def _shorten_overlaps(events: Columns, batch: Batch) -> np.ndarray | None:
    """Shorten each note to at most the gap to the next note of its (track,
    channel, pitch) in event-list order; returns which notes that removes
    (shortened to 0), or None when none."""
    notes = (events.kind == NOTE).nonzero()[0]
    if len(notes) < 2:
        return None
    voice_order, _, voice_ends = sort_groups(
        *batch.keys(events.file[notes], events.track[notes], events.param0[notes], events.param1[notes])
    )
    by_voice = notes[voice_order]
    del notes, voice_order
    same_voice = ~voice_ends[:-1]
    earlier, later = by_voice[:-1][same_voice], by_voice[1:][same_voice]
    del by_voice, same_voice
    gap = events.time[later] - events.time[earlier]
    del later
    duration = events.param3[earlier]
    events.param3[earlier] = np.where(gap > 0, np.minimum(duration, gap), duration)
    removed = gap <= 0
    if not removed.any():
        return None
    popped = np.zeros(len(events), bool)
    popped[earlier[removed]] = True
    return popped
