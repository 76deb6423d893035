"""v2 tokens -> score -> MIDI file, exactly as the reference's ``detokenize`` and ``score2midi``."""

from __future__ import annotations

import numpy as np

from midilm import vocab
from midilm.errors import MidiFileError
from midilm.tokenizer.grammar import check_shape, event_rows
from midilm.tokenizer.score import DEFAULT_32NDS_PER_BEAT, DEFAULT_CLOCKS_PER_CLICK

TICKS_PER_BEAT = 480
"""Resolution of decoded scores and written MIDI files."""
TICKS_PER_STEP = TICKS_PER_BEAT // vocab.PARAM_SIZES["time2"]

_NOTE = vocab.EVENT_ID["note"]
MAX_TEMPO = 0xFFFFFF
"""Slowest tempo a MIDI file can hold (microseconds per beat, about 3.6 bpm)."""


def bpm_to_tempo(bpm: int) -> int:
    """Microseconds per beat of a bpm token value (0 read as 1), the reference's ``bpm2tempo``."""
    return int((60 / (bpm or 1)) * 10**6)


def _values(rows: np.ndarray) -> np.ndarray:
    """Parameter values (token id minus its block's first id) of valid event rows, as [n, 7]."""
    values = np.zeros((len(rows), vocab.EVENT_LEN - 1), np.int64)
    for name, params in vocab.EVENT_PARAMS.items():
        of_kind = rows[:, 0] == vocab.EVENT_ID[name]
        for slot, param in enumerate(params):
            values[of_kind, slot] = rows[of_kind, slot + 1] - vocab.PARAM_OFFSET[param]
    return values


def _sounding_steps(values: np.ndarray, steps: np.ndarray, order: np.ndarray, is_note: np.ndarray) -> np.ndarray:
    """Each note's length in 1/16 beats as decoded (0 for other events): within a
    track, a note is cut where the next note of the same channel and pitch starts.
    ``order`` sorts the events by track, then onset, then position."""
    duration = np.where(is_note, values[:, 6], 0)
    notes = order[is_note[order]]
    if len(notes) > 1:
        track = values[:, 2]
        by_key = notes[np.lexsort((np.arange(len(notes)), steps[notes], values[notes, 4], values[notes, 3], track[notes]))]
        same = (
            (track[by_key[1:]] == track[by_key[:-1]])
            & (values[by_key[1:], 3] == values[by_key[:-1], 3])
            & (values[by_key[1:], 4] == values[by_key[:-1], 4])
        )
        earlier, later = by_key[:-1][same], by_key[1:][same]
        duration[earlier] = np.minimum(duration[earlier], np.maximum(steps[later] - steps[earlier], 0))
    return duration


def sounding_durations(tokens: np.ndarray) -> np.ndarray:
    """For every row of ``tokens``, how long it sounds once decoded, in 1/16 beats
    (0 for rows that are not notes): the note's duration, cut where the next note of
    its track, channel and pitch starts, as :func:`detokenize` cuts it."""
    rows = check_shape(tokens)
    valid = event_rows(rows, check_padding=False)
    values = _values(rows[valid])
    steps = np.cumsum(values[:, 0]) * vocab.PARAM_SIZES["time2"] + values[:, 1]
    order = np.lexsort((np.arange(len(values)), steps, values[:, 2]))
    out = np.zeros(len(rows), dtype=np.int64)
    out[valid] = _sounding_steps(values, steps, order, rows[valid, 0] == _NOTE)
    return out


def detokenize(tokens: np.ndarray) -> list:
    """The score (``[480, track, ...]``, the reference's list form) of token rows.

    Invalid rows, BOS, EOS and PAD are skipped. Events are grouped by their
    track token (used track numbers in ascending order, gaps closed); a note
    is cut where the next note of the same channel and pitch starts, and
    notes cut to nothing are removed.
    """
    rows = check_shape(tokens)
    rows = rows[event_rows(rows, check_padding=False)]
    values = _values(rows)
    steps = np.cumsum(values[:, 0]) * vocab.PARAM_SIZES["time2"] + values[:, 1]
    tick = steps * TICKS_PER_STEP
    track = values[:, 2]
    order = np.lexsort((np.arange(len(rows)), tick, track))
    is_note = rows[:, 0] == _NOTE
    duration = _sounding_steps(values, steps, order, is_note) * TICKS_PER_STEP
    keep = order[~is_note[order] | (duration[order] > 0)]

    tracks: dict[int, list] = {}
    names = {vocab.EVENT_ID[name]: name for name in vocab.EVENT_NAMES}
    for event_id, event_tick, event_track, event_values, event_duration in zip(
        rows[keep, 0].tolist(), tick[keep].tolist(), track[keep].tolist(), values[keep, 3:].tolist(), duration[keep].tolist(), strict=True
    ):
        name = names[event_id]
        if name == "note":
            channel, pitch, velocity, _ = event_values
            event = [name, event_tick, event_duration, channel, pitch, velocity]
        elif name in ("patch_change", "control_change"):
            event = [name, event_tick, *event_values[: 2 if name == "patch_change" else 3]]
        elif name == "set_tempo":
            event = [name, event_tick, bpm_to_tempo(event_values[0])]
        elif name == "time_signature":
            event = [name, event_tick, event_values[0] + 1, event_values[1] + 1, DEFAULT_CLOCKS_PER_CLICK, DEFAULT_32NDS_PER_BEAT]
        else:
            event = [name, event_tick, event_values[0] - 7, event_values[1]]
        tracks.setdefault(event_track, []).append(event)
    return [TICKS_PER_BEAT, *(tracks[t] for t in sorted(tracks))]


def encode_vlq(value: int) -> bytes:
    """A MIDI variable-length quantity: 7 bits a byte, most significant first."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _track_bytes(events: list) -> bytes:
    """One MTrk body: note-ons at their start, note-offs at their end, each
    time's events in score order, running status, End-of-Track last."""
    by_time: dict[int, list[tuple]] = {}
    for event in events:
        name, start = event[0], int(event[1])
        if name == "note":
            _, _, duration, channel, pitch, velocity = event
            by_time.setdefault(start, []).append((0x90 | channel, pitch & 0x7F, velocity & 0x7F))
            by_time.setdefault(start + int(duration), []).append((0x80 | channel, pitch & 0x7F, velocity & 0x7F))
        elif name == "patch_change":
            by_time.setdefault(start, []).append((0xC0 | event[2], event[3] & 0xFF))
        elif name == "control_change":
            by_time.setdefault(start, []).append((0xB0 | event[2], event[3] & 0xFF, event[4] & 0xFF))
        elif name == "set_tempo":
            # the reference keeps the low 3 bytes of tempos over 2**24 - 1 (bpm < 4), which garbles them
            by_time.setdefault(start, []).append(b"\xff\x51\x03" + min(int(event[2]), MAX_TEMPO).to_bytes(3, "big"))
        elif name == "time_signature":
            by_time.setdefault(start, []).append(b"\xff\x58\x04" + bytes(int(v) & 0xFF for v in event[2:6]))
        elif name == "key_signature":
            by_time.setdefault(start, []).append(b"\xff\x59\x02" + bytes([int(event[2]) & 0xFF, int(event[3]) & 0xFF]))
    out = bytearray()
    status = -1
    previous = 0
    for time in sorted(by_time):
        for message in by_time[time]:
            out += encode_vlq(time - previous)
            previous = time
            if isinstance(message, bytes):
                out += message
                status = -1
                continue
            if message[0] != status:
                out.append(message[0])
                status = message[0]
            out += bytes(message[1:])
    out += b"\x00\xff\x2f\x00"
    return bytes(out)


def score_to_midi(score: list) -> bytes:
    """A Standard MIDI File (format 1) of a score in the reference's list form;
    events the tokenizer does not use are not written."""
    ticks_per_beat, tracks = int(score[0]), score[1:] or [[]]
    if not 0 < ticks_per_beat < 0x8000:
        raise MidiFileError(None, f"cannot write {score[0]} ticks per beat to a MIDI file (1..32767)")
    chunks = [b"MTrk" + len(body).to_bytes(4, "big") + body for body in map(_track_bytes, tracks)]
    header = b"MThd" + (6).to_bytes(4, "big") + (1).to_bytes(2, "big") + len(chunks).to_bytes(2, "big") + ticks_per_beat.to_bytes(2, "big")
    return header + b"".join(chunks)


def tokens_to_midi(tokens: np.ndarray) -> bytes:
    """A Standard MIDI File (format 1, 480 ticks per beat) of token rows.

    Raises :class:`~midilm.errors.TokenError` if ``tokens`` is not an
    ``[n, 8]`` integer array; invalid rows inside are skipped, as the
    reference's decoder skips them.
    """
    return score_to_midi(detokenize(check_shape(tokens)))
