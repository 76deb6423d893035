"""The encoder written for reading: the reference's steps as plain Python loops.

This module follows the v2 specification (``docs/tokenizer.md``; the
reference's ``MIDITokenizerV2.tokenize``) event by event, on the score's list
form, with midilm's own rules where it is stricter (a report of every drop, the
raw-mode key-signature fix). The fast encoder (:mod:`midilm.tokenizer.encoder`)
runs the same steps on numpy tables; a test checks that both give the same
tokens and reports on real and fuzzed files. Read this one to understand what
the tokens mean; use the fast one for work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from midilm import vocab
from midilm.tokenizer.encoder.emit import SORT_ORDER
from midilm.tokenizer.encoder.keys import detect_key, key_to_sf
from midilm.tokenizer.encoder.table import check_score
from midilm.tokenizer.options import TokenizerOptions
from midilm.tokenizer.report import TokenizeReport
from midilm.tokenizer.score import MidiScore

SORT_RANK = {name: rank for rank, name in enumerate(SORT_ORDER)}
"""Order of event types at the same time and track."""
KEY_FIELDS = {"note": ("channel", "pitch"), "patch_change": ("channel",), "control_change": ("channel", "controller")}
"""Parameters that, with the type, time and track, make two events "the same" (other types: none)."""


@dataclass
class Event:
    """One event on its way to a token row."""

    name: str
    time: int
    """1/16 beats from the start (absolute until emission)."""
    track: int
    values: dict[str, int]
    """The parameters after time1, time2 and track, as token values (``vocab.EVENT_PARAMS``)."""

    @property
    def channel(self) -> int | None:
        return self.values.get("channel")

    def key(self) -> tuple:
        """What the deduplicating dict keys the event by."""
        return (self.name, self.time, self.track, *(self.values[f] for f in KEY_FIELDS.get(self.name, ())))

    def setup_key(self) -> tuple:
        """What the setup collapse keys the event by (its time left out)."""
        return (self.name, self.track, *(self.values[f] for f in KEY_FIELDS.get(self.name, ())))

    def sort_key(self) -> tuple[int, int, int]:
        return self.time, self.track, SORT_RANK[self.name]


@dataclass
class Channels:
    """What the reading pass learns about channels and tracks, in first-seen orders."""

    used: list[int] = field(default_factory=list)
    """Channels of kept notes, program and control changes, in order of first appearance."""
    tracks_of: dict[int, list[int]] = field(default_factory=dict)
    """Channel -> tracks it is used in."""
    note_tracks: dict[int, list[int]] = field(default_factory=dict)
    """Channel -> tracks with notes on it."""
    home: dict[int, int] = field(default_factory=dict)
    """Channel -> track of its first note."""
    with_patch: list[int] = field(default_factory=list)
    track_channels: dict[int, list[int]] = field(default_factory=dict)
    """Track -> channels of its notes."""
    pitch_classes: list[int] = field(default_factory=lambda: [0] * 12)
    """How often each pitch class sounds outside the drum channel."""

    @property
    def empty(self) -> list[int]:
        """Used channels without notes."""
        return [c for c in self.used if c not in self.note_tracks]


def plain_encode(score: MidiScore, options: TokenizerOptions, report: TokenizeReport) -> np.ndarray:
    """Token rows [n, 8] of a score, exactly as the fast encoder gives them; fills ``report``.

    Raises :class:`~midilm.errors.MidiFileError` for a score no MIDI file gives.
    """
    options = options.resolved()
    report.record_score(score)
    check_score(score, report.source)
    tracks = score.to_list()[1:]
    for track in tracks[vocab.MAX_TRACKS :]:
        report.drop("track_limit", len(track))
    channels = Channels()
    events, read_key_signatures = read_tracks(tracks[: vocab.MAX_TRACKS], score.ticks_per_beat, options, channels, report)
    event_list = list(events.values())
    if options.remap_track_channel:
        event_list, channels, key_signatures = remap(event_list, channels, options, report)
    else:
        key_signatures = read_key_signatures
    if options.add_default_instr:
        for channel in channels.used:
            if channel not in channels.with_patch and channel in channels.home:
                event_list.append(Event("patch_change", 0, channels.home[channel], {"channel": channel, "patch": 0}))
                report.add("default_patch")
    event_list = fix_key_signatures(event_list, key_signatures, channels, options, report)
    event_list = collapse_setup(sorted(event_list, key=Event.sort_key), report)
    empty = channels.empty if options.remove_empty_channels else []
    return emit(event_list, empty, options, report)


def token_values(name: str, fields: list, steps: Callable[[int], int]) -> dict[str, int] | str:
    """An event's parameters after time1, time2 and track as token values, or
    the reason the reference refuses it: a channel outside 0..15, a tempo of
    0, a time or key signature the vocabulary cannot hold."""
    if name == "note":
        duration, channel, pitch, velocity = fields
        values = {"channel": channel, "pitch": pitch, "velocity": velocity, "duration": max(1, steps(duration))}
    elif name == "patch_change":
        values = dict(zip(("channel", "patch"), fields, strict=True))
    elif name == "control_change":
        values = dict(zip(("channel", "controller", "value"), fields, strict=True))
    elif name == "set_tempo":
        if fields[0] == 0:
            return "invalid_tempo"
        values = {"bpm": min(int(60 / (fields[0] / 1e6)), vocab.PARAM_SIZES["bpm"] - 1)}
    elif name == "time_signature":
        numerator, denominator_exponent = fields[:2]
        if not (1 <= numerator <= vocab.PARAM_SIZES["nn"] and 1 <= denominator_exponent <= vocab.PARAM_SIZES["dd"]):
            return "invalid_time_signature"
        values = {"nn": numerator - vocab.NN_OFFSET, "dd": denominator_exponent - vocab.DD_OFFSET}
    else:
        sharps_flats, minor = fields
        if not (-vocab.SF_OFFSET <= sharps_flats <= vocab.SF_OFFSET and 0 <= minor < vocab.PARAM_SIZES["mi"]):
            return "invalid_key_signature"
        values = {"sf": sharps_flats + vocab.SF_OFFSET, "mi": minor}
    if "channel" in values and not 0 <= values["channel"] < vocab.CHANNELS:
        return "invalid_channel"
    return values


class RepeatFilters:
    """One track's filters: a program equal to the channel's last one, a
    control value within ``cc_eps`` of the last kept one, a tempo within
    ``tempo_eps`` bpm of the last kept one (both starting from 0)."""

    def __init__(self, options: TokenizerOptions) -> None:
        self.options = options
        self.program: dict[int, int] = {}
        self.control: dict[tuple[int, int], int] = {}
        self.bpm = 0

    def drop_reason(self, name: str, values: dict[str, int]) -> str | None:
        """Why the event is filtered out, or None (then it is the new last value)."""
        if name == "patch_change":
            if self.program.get(values["channel"]) == values["patch"]:
                return "repeated_patch"
            self.program[values["channel"]] = values["patch"]
        elif name == "control_change":
            key = (values["channel"], values["controller"])
            if abs(self.control.get(key, 0) - values["value"]) < self.options.cc_eps:
                return "cc_within_eps"
            self.control[key] = values["value"]
        elif name == "set_tempo":
            if abs(self.bpm - values["bpm"]) < self.options.tempo_eps:
                return "tempo_within_eps"
            self.bpm = values["bpm"]
        return None


def read_tracks(
    tracks: list[list], ticks_per_beat: float, options: TokenizerOptions, channels: Channels, report: TokenizeReport
) -> tuple[dict[tuple, Event], list[Event]]:
    """Step 1 and 2: each track's events checked, quantised and filtered, into
    an insertion-ordered dict that deduplicates them; also the key signatures
    read (before deduplication)."""

    def steps(ticks: int) -> int:
        return round(vocab.STEPS_PER_BEAT * ticks / ticks_per_beat)

    events: dict[tuple, Event] = {}
    key_signatures: list[Event] = []
    for track_index, track in enumerate(tracks):
        channels.track_channels[track_index] = []
        filters = RepeatFilters(options)
        last_note: dict[tuple[int, int], Event] = {}
        for name, tick, *fields in track:
            values = token_values(name, fields, steps)
            if isinstance(values, str):
                report.drop(values)
                continue
            if name == "note":  # these count even if the note is dropped later
                channel, pitch = values["channel"], values["pitch"]
                channels.note_tracks.setdefault(channel, [])
                if track_index not in channels.note_tracks[channel]:
                    channels.note_tracks[channel].append(track_index)
                channels.home.setdefault(channel, track_index)
                if channel not in channels.track_channels[track_index]:
                    channels.track_channels[track_index].append(channel)
                if channel != vocab.DRUM_CHANNEL:
                    channels.pitch_classes[pitch % 12] += 1
            reason = filters.drop_reason(name, values)
            if reason:
                report.drop(reason)
                continue
            if name == "patch_change" and values["channel"] not in channels.with_patch:
                channels.with_patch.append(values["channel"])
            event = Event(name, steps(tick), track_index, values)
            if name == "key_signature":
                key_signatures.append(event)
            if event.channel is not None:
                if event.channel not in channels.used:
                    channels.used.append(event.channel)
                channels.tracks_of.setdefault(event.channel, [])
                if track_index not in channels.tracks_of[event.channel]:
                    channels.tracks_of[event.channel].append(track_index)
            if name == "note":
                # quantisation can make notes of one pitch overlap: the earlier one ends where the next starts
                voice = (event.values["channel"], event.values["pitch"])
                previous = last_note.get(voice)
                if previous is not None:
                    previous.values["duration"] = max(0, min(previous.values["duration"], event.time - previous.time))
                    if previous.values["duration"] == 0:
                        del events[previous.key()]
                        report.drop("note_overlap")
                last_note[voice] = event
            if event.key() in events:
                report.drop("duplicate")  # the later event takes the earlier one's place
            events[event.key()] = event
    return events, key_signatures


def remap(
    event_list: list[Event], channels: Channels, options: TokenizerOptions, report: TokenizeReport
) -> tuple[list[Event], Channels, list[Event]]:
    """Step 3: channels packed from 0 (the drums stay on 9) and a track for
    each (channel, track) pair with notes, numbered from 1 in channel order.
    Returns the events, what is known of the new channels and tracks, and the
    key signatures."""
    order = channels.used
    if options.remove_empty_channels:
        order = [c for c in order if c not in channels.empty] + channels.empty
    channel_map = {vocab.DRUM_CHANNEL: vocab.DRUM_CHANNEL} if vocab.DRUM_CHANNEL in channels.used else {}
    for channel in order:
        if channel != vocab.DRUM_CHANNEL:
            packed = len([c for c in channel_map if c != vocab.DRUM_CHANNEL])
            channel_map[channel] = packed if packed < vocab.DRUM_CHANNEL else packed + 1
    new_track: dict[tuple[int, int], int] = {}
    for channel in sorted(channel_map, key=channel_map.get):
        if options.remove_empty_channels and channel in channels.empty:
            continue
        note_tracks = channels.note_tracks.get(channel, [])
        for track in channels.tracks_of[channel]:
            if not note_tracks or track in note_tracks:
                new_track[channel, track] = len(new_track) + 1

    renumbered = Channels(used=list(channel_map.values()), pitch_classes=channels.pitch_classes)
    key_signatures: list[Event] = []
    copies: list[Event] = []
    kept: list[Event] = []
    for event in event_list:
        channel = event.channel
        if event.name == "note":
            event.track = new_track.get((channel, event.track), 0)
            event.values["channel"] = channel_map[channel]
            renumbered.home.setdefault(channel_map[channel], event.track)
        elif event.name in ("set_tempo", "time_signature"):
            event.track = 0
        elif event.name in ("patch_change", "control_change"):
            note_tracks = channels.note_tracks.get(channel, [])
            track = note_tracks[0] if note_tracks and event.track not in note_tracks else event.track
            event.track = new_track.get((channel, track), 0)
            event.values["channel"] = channel_map[channel]
            if event.name == "patch_change" and channel_map[channel] not in renumbered.with_patch:
                renumbered.with_patch.append(channel_map[channel])
        else:
            pairs = []
            for original in range(vocab.CHANNELS):
                track = new_track.get((original, event.track), 0)
                if event.track in channels.tracks_of.get(original, []) and track and (channel_map[original], track) not in pairs:
                    pairs.append((channel_map[original], track))
            if not pairs:
                if event.track != 0:
                    report.drop("key_signature_untracked")
                    continue
            else:
                first_channel, event.track = pairs[0]
                if first_channel == vocab.DRUM_CHANNEL:
                    event.values["sf"] = vocab.NO_KEY_SF
                for channel_value, track in pairs[1:]:
                    copy = replace(event, track=track, values=dict(event.values))
                    if channel_value == vocab.DRUM_CHANNEL:
                        copy.values["sf"] = vocab.NO_KEY_SF
                    copies.append(copy)
                    report.add("key_signature_copy")
            key_signatures.append(event)
        kept.append(event)
    key_signatures += copies
    for original in range(vocab.CHANNELS):
        for track in channels.tracks_of.get(original, []) if original in channel_map else []:
            of_track = renumbered.track_channels.setdefault(new_track.get((original, track), 0), [])
            if channel_map[original] not in of_track:
                of_track.append(channel_map[original])
    renumbered.note_tracks = {channel_map[c]: [new_track.get((c, t), 0) for t in tracks] for c, tracks in channels.note_tracks.items()}
    return kept + copies, renumbered, key_signatures


def fix_key_signatures(
    event_list: list[Event], key_signatures: list[Event], channels: Channels, options: TokenizerOptions, report: TokenizeReport
) -> list[Event]:
    """Step 4: with no key signature, or only C major/A minor ones, detect the
    key from the notes: add it to every track (C major on drum-only tracks),
    or write it into the existing ones; if no key is found, remove them."""
    if any(k.values["sf"] != vocab.NO_KEY_SF for k in key_signatures):
        return event_list
    root = detect_key(np.array(channels.pitch_classes))
    if root is None:
        listed = [e for e in event_list if e.name == "key_signature"]
        if len(key_signatures) > len(listed):
            report.warn("the reference crashes on this file (raw mode, duplicate key signatures); they are removed")
        report.drop("default_key_signature", len(listed))
        return [e for e in event_list if e.name != "key_signature"]
    sf = key_to_sf(root, 0) + vocab.SF_OFFSET
    drums_only = [vocab.DRUM_CHANNEL]
    if not key_signatures:
        for track, of_track in channels.track_channels.items():
            if options.remap_track_channel and track == 0:
                continue
            event_list.append(Event("key_signature", 0, track, {"sf": vocab.NO_KEY_SF if of_track == drums_only else sf, "mi": 0}))
            report.add("detected_key_signature")
        return event_list
    for key_signature in key_signatures:
        if channels.track_channels.get(key_signature.track) != drums_only:
            key_signature.values.update(sf=sf, mi=0)
    return event_list


def marker_row(marker: int) -> list[int]:
    """A BOS or EOS row."""
    return [marker] + [vocab.PAD] * (vocab.EVENT_LEN - 1)


def same_time(a: Event, b: Event) -> bool:
    """The reference's test: beats + steps equal (a sum, so beat 1 step 0 equals beat 0 step 1)."""
    return sum(divmod(a.time, vocab.STEPS_PER_BEAT)) == sum(divmod(b.time, vocab.STEPS_PER_BEAT))


def collapse_setup(event_list: list[Event], report: TokenizeReport) -> list[Event]:
    """Step 5a: the settings before the first note (and within the first group
    of events at its time) move to time 0, the last of each kind, track and
    channel/controller/pitch surviving; notes and time signatures among them
    keep their time. Without an event ending the setup nothing changes."""
    setup: dict[tuple, Event] = {}
    notes_seen = False
    for i, event in enumerate(event_list):
        has_next = i + 1 < len(event_list) and same_time(event, event_list[i + 1])
        has_previous = notes_seen and i > 0 and same_time(event, event_list[i - 1])
        if (event.name == "note" and not has_next) or (notes_seen and not has_previous):
            report.drop("setup_replaced", i - len(setup))
            return sorted(setup.values(), key=Event.sort_key) + event_list[i:]
        notes_seen |= event.name == "note"
        setup[event.setup_key()] = replace(event, time=event.time if event.name in ("note", "time_signature") else 0)
    return event_list


def emit(event_list: list[Event], empty_channels: list[int], options: TokenizerOptions, report: TokenizeReport) -> np.ndarray:
    """Step 5b: token rows, times relative to the last emitted event. An event
    with a value outside the vocabulary is dropped; 128 beats or more after
    the last emitted event, it and every later event are dropped (a gap)."""
    rows = []
    last_beat = 0
    gap = False
    for event in event_list:
        if event.name in ("patch_change", "control_change") and event.channel in empty_channels:
            report.drop("empty_channel")
            continue
        if gap:
            report.drop("gap")
            continue
        beat, step = divmod(event.time, vocab.STEPS_PER_BEAT)
        values = {"time1": beat - last_beat, "time2": step, "track": event.track, **event.values}
        out_of_range = [p for p, v in values.items() if not 0 <= v < vocab.PARAM_SIZES[p]]
        if out_of_range == ["time1"] and values["time1"] > 0:
            gap = True
            report.drop("gap")
            continue
        if out_of_range:
            report.drop("long_note" if [p for p in out_of_range if p != "time1"] == ["duration"] else "out_of_range")
            continue
        rows.append(vocab.encode_event(event.name, **values))
        last_beat = beat
    report.output_events = len(rows)
    if options.add_bos_eos:
        rows = [marker_row(vocab.BOS), *rows, marker_row(vocab.EOS)]
    return np.array(rows, vocab.TOKEN_DTYPE).reshape(-1, vocab.EVENT_LEN)
