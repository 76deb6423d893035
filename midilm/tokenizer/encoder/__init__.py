"""Scores -> v2 tokens, exactly as the reference's ``MIDITokenizerV2.tokenize``.

The reference walks Python lists event by event (:mod:`midilm.tokenizer.plain_encoder`
does the same, written for reading); this package runs the same steps on an
integer table with numpy, in the same order (``docs/tokenizer.md`` describes
each step and its quirks):

1. :mod:`~.select`: quantise, check each event, filter repeated programs,
   control changes within ``cc_eps`` and tempos within ``tempo_eps`` (per track);
2. :mod:`~.dedup`: the reference's insertion-ordered dict keyed by kind, 1/16
   step, track and channel/pitch/controller, plus its note-overlap rule;
3. :mod:`~.remap`: renumber tracks and channels (``remap_track_channel``),
   from the channel and track facts of :mod:`~.layout`;
4. :mod:`~.keys`: add default instruments, detect or fix key signatures;
5. :mod:`~.emit`: sort, collapse the "setup" before the first note, emit with
   range checks.

:mod:`~.pipeline` chains them on a batch's table (:mod:`midilm.tokenizer.columns`,
:mod:`~.table`): one array per field, narrow types, files one after another,
so that numpy's fixed cost per call (which dominates small files) is paid
once per batch and a large file's table stays a few times its size; every
step changes the table in place. :mod:`~.grouping` is the numpy group-by kit
the steps share. What the reference decides per file with Python dicts
(channel order, renumbering, key detection) is decided here per file too,
from a few numbers gathered for all files at once.
"""

from midilm.tokenizer.encoder.pipeline import encode, encode_batch, encode_events

__all__ = ["encode", "encode_batch", "encode_events"]
