"""v2 tokens -> score -> MIDI file, exactly as the reference's ``detokenize`` and ``score2midi``."""

from __future__ import annotations

import numpy as np

from midilm import vocab
from midilm.errors import MidiFileError
from midilm.tokenizer.events import EventTable
from midilm.tokenizer.grammar import check_shape
from midilm.tokenizer.score import DEFAULT_32NDS_PER_BEAT, DEFAULT_CLOCKS_PER_CLICK
from midilm.tokenizer.tempo import bpm_to_tempo

TICKS_PER_BEAT = 480
"""Resolution of decoded scores and written MIDI files."""
TICKS_PER_STEP = TICKS_PER_BEAT // vocab.STEPS_PER_BEAT

MAX_TEMPO = 0xFFFFFF
"""Slowest tempo a MIDI file can hold (microseconds per beat, about 3.6 bpm)."""


def sounding_steps(events: EventTable) -> np.ndarray:
    """How long each event sounds once decoded, in 1/16 beats (0 for events that
    are not notes): a note's duration, cut where the next note of its track,
    channel and pitch starts, as :func:`detokenize` cuts it."""
    step = events.step
    track, channel, pitch = events.column("track"), events.column("channel"), events.column("pitch")
    is_note = events.is_event("note")
    duration = np.where(is_note, events.column("duration"), 0)
    order = np.lexsort((np.arange(len(events)), step, track))
    notes = order[is_note[order]]
    if len(notes) > 1:
        # within a track, sorted by onset: cut each note at the next one of the same channel and pitch
        by_key = notes[np.lexsort((np.arange(len(notes)), step[notes], pitch[notes], channel[notes], track[notes]))]
        same = (
            (track[by_key[1:]] == track[by_key[:-1]])
            & (channel[by_key[1:]] == channel[by_key[:-1]])
            & (pitch[by_key[1:]] == pitch[by_key[:-1]])
        )
        earlier, later = by_key[:-1][same], by_key[1:][same]
        duration[earlier] = np.minimum(duration[earlier], np.maximum(step[later] - step[earlier], 0))
    return duration


def sounding_durations(tokens: np.ndarray) -> np.ndarray:
    """For every row of ``tokens``, how long it sounds once decoded, in 1/16 beats
    (0 for rows that are not notes): see :func:`sounding_steps`."""
    events = EventTable.of(check_shape(tokens))
    out = np.zeros(len(tokens), dtype=np.int64)
    out[events.rows] = sounding_steps(events)
    return out


def detokenize(tokens: np.ndarray) -> list:
    """The score (``[480, track, ...]``, the reference's list form) of token rows.

    Invalid rows, BOS, EOS and PAD are skipped. Events are grouped by their
    track token (used track numbers in ascending order, gaps closed); a note
    is cut where the next note of the same channel and pitch starts, and
    notes cut to nothing are removed.
    """
    events = EventTable.of(tokens)
    tick = events.step * TICKS_PER_STEP
    track = events.column("track")
    order = np.lexsort((np.arange(len(events)), tick, track))
    is_note = events.is_event("note")
    duration = sounding_steps(events) * TICKS_PER_STEP
    keep = order[~is_note[order] | (duration[order] > 0)]

    tracks: dict[int, list] = {}
    parameters = events.values[:, vocab.CHANNEL_SLOT :]  # the parameters after time1, time2 and track
    for event_id, event_tick, event_track, event_values, event_duration in zip(
        events.event_id[keep].tolist(),
        tick[keep].tolist(),
        track[keep].tolist(),
        parameters[keep].tolist(),
        duration[keep].tolist(),
        strict=True,
    ):
        name = vocab.ID_EVENT[event_id]
        if name == "note":
            channel_value, pitch_value, velocity, _ = event_values
            event = [name, event_tick, event_duration, channel_value, pitch_value, velocity]
        elif name in ("patch_change", "control_change"):
            event = [name, event_tick, *event_values[: 2 if name == "patch_change" else 3]]
        elif name == "set_tempo":
            event = [name, event_tick, bpm_to_tempo(event_values[0])]
        elif name == "time_signature":
            nn, dd = event_values[:2]
            event = [name, event_tick, nn + vocab.NN_OFFSET, dd + vocab.DD_OFFSET, DEFAULT_CLOCKS_PER_CLICK, DEFAULT_32NDS_PER_BEAT]
        else:
            sf, mi = event_values[:2]
            event = [name, event_tick, sf - vocab.SF_OFFSET, mi]
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
