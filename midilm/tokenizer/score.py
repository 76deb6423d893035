"""A MIDI file's tokenizable events as one integer table, in the reference's score order.

The reference (MIDI.py ``midi2score``) hands the tokenizer a "score": a list
``[ticks_per_beat, track_0, track_1, ...]`` whose tracks list events such as
``['note', start, duration, channel, pitch, velocity]``. :class:`MidiScore`
holds the same content column-wise so that the encoder can work with numpy:
one row per note, program change, control change, tempo, time signature or
key signature, tracks one after another, each track in score order (see
``docs/tokenizer.md``). Other events (text, sysex, pitch bend...) are not kept.

Columns of :attr:`MidiScore.events` (int64):

==========  =============  =========  =========  ==========  ================
kind        PARAM0         PARAM1     PARAM2     PARAM3      (TICK, TRACK)
==========  =============  =========  =========  ==========  ================
NOTE        channel        pitch      velocity   duration    start tick
PATCH       channel        program    0          0
CONTROL     channel        controller value      0
TEMPO       us per beat    0          0          0
TIME_SIG    numerator      denom exp  clocks     32nds       (dd=2 means /4)
KEY_SIG     sharps/flats   minor      0          0           (signed)
==========  =============  =========  =========  ==========  ================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from midilm import vocab
from midilm.errors import MidiFileError

NOTE, PATCH, CONTROL, TEMPO, TIME_SIG, KEY_SIG = range(6)
"""Event kinds, in the vocabulary's event order."""

KIND_NAMES: tuple[str, ...] = vocab.EVENT_NAMES
assert KIND_NAMES == ("note", "patch_change", "control_change", "set_tempo", "time_signature", "key_signature")
KIND_OF_NAME: dict[str, int] = {name: i for i, name in enumerate(KIND_NAMES)}

KIND, TICK, TRACK, PARAM0, PARAM1, PARAM2, PARAM3 = range(7)
N_COLUMNS = 7

PARAM_COUNT = (4, 2, 3, 1, 4, 2)
"""How many PARAM columns each kind uses, in the list form's order."""

DEFAULT_CLOCKS_PER_CLICK, DEFAULT_32NDS_PER_BEAT = 24, 8
"""Time-signature fields the tokens do not carry (the reference writes these)."""


@dataclass(frozen=True)
class MidiScore:
    """Tokenizable events of a MIDI file (see the module docstring for the columns)."""

    ticks_per_beat: float
    tracks: int
    events: np.ndarray
    warnings: tuple[str, ...] = ()
    dropped: dict[str, int] = field(default_factory=dict)
    """Events the reader already left out, by :data:`~midilm.tokenizer.report.DROP_REASONS` key."""

    def to_list(self) -> list:
        """The reference's list form: ``[ticks_per_beat, track, ...]``."""
        tracks: list[list] = [[] for _ in range(self.tracks)]
        for row in self.events.tolist():
            kind, tick, track = row[KIND], row[TICK], row[TRACK]
            params = row[PARAM0 : PARAM0 + PARAM_COUNT[kind]]
            if kind == NOTE:
                channel, pitch, velocity, duration = params
                params = [duration, channel, pitch, velocity]
            tracks[track].append([KIND_NAMES[kind], tick, *params])
        return [self.ticks_per_beat, *tracks]


def score_from_list(score: list, source: str | None = None) -> MidiScore:
    """A :class:`MidiScore` from the reference's list form (for example the
    output of :func:`~midilm.tokenizer.detokenize`). Events of other kinds are
    ignored, as the reference tokenizer ignores them."""
    if not isinstance(score, (list, tuple)) or not score:
        raise MidiFileError(source, "a score is a list [ticks_per_beat, track, ...]")
    rows: list[list[int]] = []
    for track_index, track in enumerate(score[1:]):
        for event in track:
            kind = KIND_OF_NAME.get(event[0])
            if kind is None:
                continue
            try:
                if kind == NOTE:
                    _, start, duration, channel, pitch, velocity = event
                    params = [channel, pitch, velocity, duration]
                else:
                    start, params = event[1], list(event[2 : 2 + PARAM_COUNT[kind]])
                    if kind == TIME_SIG:
                        params += [DEFAULT_CLOCKS_PER_CLICK, DEFAULT_32NDS_PER_BEAT][len(params) - 2 :]
                    if len(params) != PARAM_COUNT[kind]:
                        raise ValueError
            except ValueError:
                raise MidiFileError(source, f"track {track_index}: malformed {event[0]} event {event!r}") from None
            rows.append([kind, start, track_index, *params, *([0] * (4 - len(params)))])
    events = np.array(rows, dtype=np.int64).reshape(-1, N_COLUMNS)
    return MidiScore(ticks_per_beat=score[0], tracks=len(score) - 1, events=events)
