"""Scores -> v2 tokens: the encoder's five steps run on a batch's table."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from midilm.errors import MidiFileError
from midilm.tokenizer.columns import Columns
from midilm.tokenizer.encoder.dedup import deduplicate
from midilm.tokenizer.encoder.emit import collapse_setup, drop_empty_channels, emit, sort_events
from midilm.tokenizer.encoder.keys import default_instruments, fix_key_signatures
from midilm.tokenizer.encoder.layout import Layout
from midilm.tokenizer.encoder.remap import remap
from midilm.tokenizer.encoder.select import select
from midilm.tokenizer.encoder.table import Batch, append_events, check_score, score_columns
from midilm.tokenizer.options import TokenizerOptions
from midilm.tokenizer.report import TokenizeReport
from midilm.tokenizer.score import KEY_SIG, MidiScore
from midilm.vocab import MAX_TRACKS


def encode(score: MidiScore, options: TokenizerOptions, report: TokenizeReport) -> np.ndarray:
    """Token rows [n, 8] (``vocab.TOKEN_DTYPE``) of a score; fills ``report``."""
    (tokens,) = encode_batch([score], options, [report])
    if isinstance(tokens, MidiFileError):
        raise tokens
    return tokens


def encode_batch(
    scores: Sequence[MidiScore], options: TokenizerOptions, reports: Sequence[TokenizeReport]
) -> list[np.ndarray | MidiFileError]:
    """Token rows of each score, or the :class:`~midilm.errors.MidiFileError`
    that refuses it (a hand-built score with impossible values); fills the
    score's report. The scores are encoded together, as one table."""
    results: list[np.ndarray | MidiFileError] = []
    accepted = []
    for score, report in zip(scores, reports, strict=True):
        report.record_score(score)
        try:
            check_score(score, report.source)
            accepted.append(len(results))
            results.append(np.zeros(0))
        except MidiFileError as error:
            results.append(error)
    if accepted:
        batch = Batch([reports[i] for i in accepted], [scores[i].ticks_per_beat for i in accepted])
        for index, tokens in zip(accepted, encode_events(score_columns([scores[i] for i in accepted]), batch, options), strict=True):
            results[index] = tokens
    return results


@functools.lru_cache(maxsize=64)
def _resolved(options: TokenizerOptions) -> TokenizerOptions:
    return options.resolved()


def encode_events(events: Columns, batch: Batch, options: TokenizerOptions) -> list[np.ndarray]:
    """Steps 1-5 on the table of a batch of plausible scores (which they
    consume: its fields are replaced as the steps go): each file's token rows."""
    options = _resolved(options)
    pre_dedup_key_sf = select(events, options, batch)
    layouts = Layout.of(events, batch, [min(report.tracks, MAX_TRACKS) for report in batch.reports])
    deduplicate(events, batch)
    if options.remap_track_channel:
        instruments = remap(events, layouts, options, batch)
        key_sig = (events.kind == KEY_SIG).nonzero()[0]
        key_sf = events.file[key_sig], events.param0[key_sig]
    else:
        instruments, key_sf = [layout.instruments for layout in layouts], pre_dedup_key_sf
    default_patches = default_instruments(instruments, batch) if options.add_default_instr else []
    removed, detected_keys = fix_key_signatures(
        events, key_sf, [layout.pitch_class_hist for layout in layouts], instruments, options, batch
    )
    append_events(events, default_patches + detected_keys)
    # step 5 orders and filters row indices, and gathers the table once
    order = sort_events(events, batch)
    if removed:
        order = order[np.isin(order, removed, invert=True)]
    order = collapse_setup(events, order, batch)
    if options.remove_empty_channels and any(i.empty for i in instruments):
        order = drop_empty_channels(events, order, instruments, batch)
    events.keep(order)
    del order
    return emit(events, options, batch)
