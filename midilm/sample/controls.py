"""Controls as prompt events: instruments, drum kit, tempo, time and key signature.

The events are laid out the way the optimised tokenizer lays out a real file's
set-up, so the model sees a familiar beginning: time signature, key signature
and tempo on track 0, then one patch change per instrument on its own track
(tracks 1, 2, ...) and channel (0, 1, ... skipping 9; drums on channel 9).
"""

from __future__ import annotations

import re

import numpy as np

from midilm import vocab
from midilm.errors import ConfigError
from midilm.sample.config import Controls

DRUM_CHANNEL = vocab.DRUM_CHANNEL
DRUM_KITS: dict[str, int] = {
    # General MIDI 2 drum-kit programs (played on channel 10)
    "standard": 0,
    "room": 8,
    "power": 16,
    "electronic": 24,
    "tr-808": 25,
    "analog": 25,
    "jazz": 32,
    "brush": 40,
    "orchestra": 48,
    "sfx": 56,
}
INSTRUMENT_ALIASES: dict[str, int] = {
    # short names people type, mapped to the family's first General MIDI program
    "piano": 0,
    "epiano": 4,
    "harpsichord": 6,
    "organ": 19,
    "guitar": 24,
    "electricguitar": 27,
    "bass": 32,
    "strings": 48,
    "choir": 52,
    "brass": 61,
    "sax": 65,
    "saxophone": 65,
}
_LETTER_FIFTHS = {"F": -1, "C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5}


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def instrument_program(name: str) -> int:
    """A General MIDI program from a number (0-127) or a name ("Violin", "acoustic grand piano", "piano")."""
    import pretty_midi

    text = name.strip()
    if text.isdigit():
        program = int(text)
        if not 0 <= program < 128:
            raise ConfigError(f"instrument {name!r}: program numbers are 0..127")
        return program
    key = _normalise(text)
    names = [_normalise(n) for n in pretty_midi.INSTRUMENT_MAP]
    if key in names:
        return names.index(key)
    if key in INSTRUMENT_ALIASES:
        return INSTRUMENT_ALIASES[key]
    close = [pretty_midi.INSTRUMENT_MAP[i] for i, n in enumerate(names) if key and key in n][:5]
    hint = (
        f"; did you mean {', '.join(close)}?"
        if close
        else " (General MIDI names such as 'Acoustic Grand Piano', 'Violin', or numbers 0-127)"
    )
    raise ConfigError(f"unknown instrument {name!r}{hint}")


def drum_kit_program(kit: str) -> int:
    text = kit.strip().lower()
    if text.isdigit() and 0 <= int(text) < 128:
        return int(text)
    if text in DRUM_KITS:
        return DRUM_KITS[text]
    raise ConfigError(f"unknown drum kit {kit!r}; choose one of {', '.join(DRUM_KITS)} or a program number")


def parse_time_signature(text: str) -> tuple[int, int]:
    """(numerator, denominator) for "3/4"; v2 tokens hold numerators 1..16 and denominators 2, 4, 8, 16."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise ConfigError(f"time signature {text!r}: write it like 4/4 or 6/8")
    numerator, denominator = int(match.group(1)), int(match.group(2))
    if not 1 <= numerator <= 16 or denominator not in (2, 4, 8, 16):
        raise ConfigError(f"time signature {text!r}: numerator must be 1..16 and denominator 2, 4, 8 or 16")
    return numerator, denominator


def parse_key(text: str) -> tuple[int, int]:
    """(sharps or -flats, minor) of a key name: "C", "F#m", "Bb", "Eb minor", "A♭m"."""
    cleaned = text.strip().replace("♯", "#").replace("♭", "b")
    match = re.fullmatch(r"([A-Ga-g])([#b]?)\s*(m|min|minor|maj|major)?", cleaned)
    if not match:
        raise ConfigError(f"key {text!r}: write it like C, G, Bb, F#m or 'D minor'")
    letter, accidental, mode = match.group(1).upper(), match.group(2), (match.group(3) or "").lower()
    minor = mode in ("m", "min", "minor")
    sharps = _LETTER_FIFTHS[letter] + {"#": 7, "b": -7, "": 0}[accidental] - (3 if minor else 0)
    if not -7 <= sharps <= 7:
        raise ConfigError(f"key {text!r} needs {abs(sharps)} {'sharps' if sharps > 0 else 'flats'}; key signatures hold at most 7")
    return sharps, int(minor)


def control_events(controls: Controls, avoid_channels: frozenset[int] = frozenset()) -> np.ndarray:
    """The control events as token rows [n, 8] (no BOS), empty when no control is set;
    instruments take the lowest melodic channels not in ``avoid_channels`` (0-based)."""
    from midilm.sample.instruments import named_plan

    rows: list[np.ndarray] = []
    at_start = {"time1": 0, "time2": 0}
    if controls.time_signature:
        numerator, denominator = parse_time_signature(controls.time_signature)
        rows.append(vocab.encode_event("time_signature", **at_start, track=0, nn=numerator - 1, dd=denominator.bit_length() - 2))
    if controls.key:
        sharps, minor = parse_key(controls.key)
        rows.append(vocab.encode_event("key_signature", **at_start, track=0, sf=sharps + 7, mi=minor))
    if controls.bpm:
        if not 1 <= controls.bpm < vocab.PARAM_SIZES["bpm"]:
            raise ConfigError(f"bpm {controls.bpm}: v2 tokens hold tempos 1..{vocab.PARAM_SIZES['bpm'] - 1}")
        rows.append(vocab.encode_event("set_tempo", **at_start, track=0, bpm=controls.bpm))
    rows.extend(named_plan(controls.instruments, controls.drums, avoid_channels=avoid_channels).patch_rows())
    return np.stack(rows) if rows else np.zeros((0, vocab.EVENT_LEN), dtype=vocab.TOKEN_DTYPE)
