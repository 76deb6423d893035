"""The v2 vocabulary of SkyTNT's midi-model, as data.

Every other module (encoder, decoder, sampler masks, models, metrics) reads
ids, ranges and event layouts from here, so no number is hard-coded twice.
Ids are allocated in one fixed order (PAD, BOS, EOS, the six event types, then
one contiguous block per parameter); a parameter value ``v`` has the id
``PARAM_OFFSET[param] + v``.
"""

from __future__ import annotations

import numpy as np

PAD: int = 0
BOS: int = 1
EOS: int = 2
EVENT_LEN: int = 8
"""Tokens per event row: the event id, up to 7 parameters, PAD to fill."""

TOKEN_DTYPE = np.uint16
"""On-disk and in-memory dtype of token arrays (every id is < 2**16)."""

EVENT_PARAMS: dict[str, tuple[str, ...]] = {
    "note": ("time1", "time2", "track", "channel", "pitch", "velocity", "duration"),
    "patch_change": ("time1", "time2", "track", "channel", "patch"),
    "control_change": ("time1", "time2", "track", "channel", "controller", "value"),
    "set_tempo": ("time1", "time2", "track", "bpm"),
    "time_signature": ("time1", "time2", "track", "nn", "dd"),
    "key_signature": ("time1", "time2", "track", "sf", "mi"),
}
"""Each event type's parameters in token order."""

EVENT_NAMES: tuple[str, ...] = tuple(EVENT_PARAMS)

PARAM_SIZES: dict[str, int] = {
    "time1": 128,  # beats since the previous event
    "time2": 16,  # 1/16-beat position inside the beat
    "duration": 2048,  # note length in 1/16 beats
    "track": 128,
    "channel": 16,
    "pitch": 128,
    "velocity": 128,
    "patch": 128,
    "controller": 128,
    "value": 128,
    "bpm": 384,
    "nn": 16,  # time-signature numerator - 1
    "dd": 4,  # time-signature denominator exponent - 1
    "sf": 15,  # key-signature sharps/flats + 7
    "mi": 2,  # 0 major, 1 minor
}
"""Number of values of each parameter, in id-allocation order."""


def _allocate() -> tuple[dict[str, int], dict[str, int], int]:
    next_id = EOS + 1
    event_ids: dict[str, int] = {}
    for name in EVENT_NAMES:
        event_ids[name] = next_id
        next_id += 1
    offsets: dict[str, int] = {}
    for param, size in PARAM_SIZES.items():
        offsets[param] = next_id
        next_id += size
    return event_ids, offsets, next_id


EVENT_ID, PARAM_OFFSET, VOCAB_SIZE = _allocate()
"""EVENT_ID: event name -> id; PARAM_OFFSET: parameter -> id of value 0."""

ID_EVENT: dict[int, str] = {i: name for name, i in EVENT_ID.items()}
EVENT_LENGTH: dict[str, int] = {name: 1 + len(p) for name, p in EVENT_PARAMS.items()}
"""Used tokens of each event type's row (the rest of the row is PAD)."""

SLOT_NAMES: tuple[str, ...] = ("event", "time1", "time2", "track", "channel", "pitch", "velocity", "duration")
"""Names of the 8 slots of a row, after the note layout (the longest event);
metrics report accuracy per slot under these names."""

FIRST_EVENT_ID: int = min(EVENT_ID.values())
LAST_EVENT_ID: int = max(EVENT_ID.values())

PARAM_SLOT: dict[str, int] = {param: slot for params in EVENT_PARAMS.values() for slot, param in enumerate(params, start=1)}
"""Slot (column of a row) of each parameter: a parameter sits in the same slot in every event that has it."""
EVENT_SLOT: int = 0
TIME1_SLOT: int = PARAM_SLOT["time1"]
TIME2_SLOT: int = PARAM_SLOT["time2"]
TRACK_SLOT: int = PARAM_SLOT["track"]
CHANNEL_SLOT: int = PARAM_SLOT["channel"]
CHANNEL_EVENTS: tuple[str, ...] = tuple(name for name, params in EVENT_PARAMS.items() if "channel" in params)
"""Events that carry a MIDI channel (note, patch_change, control_change)."""

STEPS_PER_BEAT: int = PARAM_SIZES["time2"]
"""Time resolution of the tokens: ``time2`` counts 1/16 beats, durations too."""
MAX_TRACKS: int = PARAM_SIZES["track"]
CHANNELS: int = PARAM_SIZES["channel"]
"""MIDI's 16 channels."""
DRUM_CHANNEL: int = 9
"""MIDI channel 10 (0-based 9): General MIDI's percussion channel."""
DEFAULT_BPM: int = 120
"""MIDI's tempo before the first set_tempo event."""
SF_OFFSET: int = 7
"""``sf`` token value = sharps (+) or flats (-) + 7."""
NO_KEY_SF: int = SF_OFFSET
"""Token value of sf = 0 (C major / A minor), which the reference treats as "no key known"."""
NN_OFFSET: int = 1
"""``nn`` token value = time-signature numerator - 1."""
DD_OFFSET: int = 1
"""``dd`` token value = time-signature denominator exponent - 1 (dd 1 is /4)."""

assert VOCAB_SIZE == 3406, VOCAB_SIZE
assert max(EVENT_LENGTH.values()) == EVENT_LEN
assert (PAD, BOS, EOS) == (0, 1, 2)
assert all(params.index(p) + 1 == PARAM_SLOT[p] for params in EVENT_PARAMS.values() for p in params), "one slot per parameter"
assert (TIME1_SLOT, TIME2_SLOT, TRACK_SLOT, CHANNEL_SLOT) == (1, 2, 3, 4)
assert 1 << (STEPS_PER_BEAT.bit_length() - 1) == STEPS_PER_BEAT, "steps per beat is a power of two"
assert PARAM_SIZES["sf"] == 2 * SF_OFFSET + 1


def param_range(param: str) -> tuple[int, int]:
    """Half-open id range ``[first, last + 1)`` of a parameter's tokens."""
    return PARAM_OFFSET[param], PARAM_OFFSET[param] + PARAM_SIZES[param]


def slot_ranges() -> np.ndarray:
    """Allowed id range for each (event type, slot) as an int array [6, 8, 2].

    Row ``e`` is event type ``EVENT_NAMES[e]``; slot 0 holds the event id
    itself; slots past the event's length hold ``(PAD, PAD + 1)``. This is the
    grammar a constrained sampler and a syntax checker share.
    """
    table = np.zeros((len(EVENT_NAMES), EVENT_LEN, 2), dtype=np.int64)
    for e, name in enumerate(EVENT_NAMES):
        table[e, 0] = (EVENT_ID[name], EVENT_ID[name] + 1)
        for s in range(1, EVENT_LEN):
            params = EVENT_PARAMS[name]
            table[e, s] = param_range(params[s - 1]) if s <= len(params) else (PAD, PAD + 1)
    return table


def spec() -> dict:
    """The vocabulary as a JSON-able dict, stored in stores and checkpoints so
    that loading can refuse data or weights made for another vocabulary."""
    return {
        "name": "skytnt-v2",
        "vocab_size": VOCAB_SIZE,
        "event_len": EVENT_LEN,
        "pad": PAD,
        "bos": BOS,
        "eos": EOS,
        "events": {name: list(p) for name, p in EVENT_PARAMS.items()},
        "event_ids": dict(EVENT_ID),
        "param_sizes": dict(PARAM_SIZES),
        "param_offsets": dict(PARAM_OFFSET),
    }


def encode_event(name: str, **values: int) -> np.ndarray:
    """One event row from parameter values, e.g. ``encode_event("set_tempo",
    time1=0, time2=0, track=0, bpm=120)``; refuses missing or out-of-range values."""
    params = EVENT_PARAMS[name]
    missing = [p for p in params if p not in values]
    extra = [p for p in values if p not in params]
    if missing or extra:
        raise ValueError(f"{name} takes {', '.join(params)} (missing {missing}, unexpected {extra})")
    row = np.full(EVENT_LEN, PAD, dtype=TOKEN_DTYPE)
    row[0] = EVENT_ID[name]
    for slot, param in enumerate(params, start=1):
        value = int(values[param])
        if not 0 <= value < PARAM_SIZES[param]:
            raise ValueError(f"{name}: {param} must be in 0..{PARAM_SIZES[param] - 1} (got {value})")
        row[slot] = PARAM_OFFSET[param] + value
    return row


def decode_event(row: np.ndarray) -> tuple[str, dict[str, int]]:
    """The event name and parameter values of a valid event row."""
    name = ID_EVENT[int(row[0])]
    params = EVENT_PARAMS[name]
    return name, {p: int(row[s]) - PARAM_OFFSET[p] for s, p in enumerate(params, start=1)}
