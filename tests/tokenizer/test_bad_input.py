"""Every row of issue 2's bad-input table, with the malformed bytes built in
the test where the golden set has no such file."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

from midilm.errors import MidiFileError, MidilmError
from midilm.tokenizer import TokenizerOptions, tokenize


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda m: b"", "not a MIDI file"),
        (lambda m: b"RIFF\x00\x00\x00\x04RMID", "not a MIDI file"),
        (lambda m: b"MThd\x00\x00", "malformed header: the file is only 6 bytes"),
        (
            lambda m: b"MThd\x00\x00\x00\x08\x00\x01\x00\x01\x01\xe0\x00\x00" + m.chunk(m.NOTE_TRACK),
            "malformed header: its length field is 8",
        ),
        (lambda m: m.smf(m.NOTE_TRACK, division=0), "time division is 0 ticks per beat"),
        (lambda m: m.smf(b"\x00\x90\x3c\x50\x83\x60\x80\x3c"), "channel message at byte 26 is cut off"),
        (lambda m: m.smf(b"\x00\x90\x3c\x50\x83"), "event at byte 26 is cut off"),
        (lambda m: m.smf(b"\x00\x90\x3c\x50\x00\xff\x51\x03\x07\xa1"), "meta event 0x51 at byte 26 is cut off"),
        (lambda m: m.smf(b"\x00\xff"), "meta event at byte 22 is cut off"),
        (lambda m: m.smf(b"\x00\xc0"), "channel message at byte 22 is cut off"),
        (lambda m: m.smf(b"\x00\xf2\x01"), "system message 0xf2 at byte 22 is cut off"),
        (lambda m: m.smf(b"\x00\x90\x3c\x50\x8f\xff\xff\xff\xff\xff\x7f\x80\x3c\x40" + m.END), "at byte 26 is longer than 4 bytes"),
        (lambda m: m.smf(b"\x00\x90\x3c\x50" + b"\xff" * 2040 + b"\x7f\x80\x3c\x40" + m.END), "at byte 26 is longer than 4 bytes"),
        (lambda m: m.smf(b"\x00\xff\x01" + b"\x80" * 300_000 + b"\x01a" + m.END), "at byte 25 is longer than 4 bytes"),
        (lambda m: m.smf(b"\x00\xf0" + b"\x81" * 300_000 + b"\x00" + m.END), "at byte 24 is longer than 4 bytes"),
        (lambda m: m.smf(b"\xff\xff\xff\x7f\xb0\x07\x64" * 4097 + m.END), "a track lasts 1099780059135 ticks"),
    ],
)
def test_unreadable_files_raise_with_the_reason(build, reason, midi, tmp_path):
    path = tmp_path / "bad.mid"
    path.write_bytes(build(midi))
    with pytest.raises(MidiFileError, match=reason) as error:
        tokenize(path)
    assert str(path) in str(error.value)


def test_golden_unreadable_files(golden_dir):
    for name, reason in [
        ("edge_not_midi", "not a MIDI file"),
        ("edge_bad_header_len", "malformed header"),
        ("edge_division_zero", "0 ticks per beat"),
        ("edge_truncated_event", "cut off"),
    ]:
        with pytest.raises(MidiFileError, match=reason):
            tokenize(golden_dir / f"{name}.mid")


def test_file_with_only_meta_events_gives_the_references_tokens():
    """Track name, tempo 120, 3/4, G major, then tempo 150 after a beat: no
    notes, so no setup collapsing (tokens computed by the reference)."""
    data = bytes.fromhex(
        "4d546864000000060001000101e04d54726b0000002900ff03046e616d6500ff510307a12000ff58040302180800ff590201008360ff5103061a8000ff2f00"
    )
    expected = [
        [1, 0, 0, 0, 0, 0, 0, 0],
        [7, 9, 137, 2201, 3371, 3386, 0, 0],
        [8, 9, 137, 2201, 3397, 3404, 0, 0],
        [6, 9, 137, 2201, 3105, 0, 0, 0],
        [6, 10, 137, 2201, 3135, 0, 0, 0],
        [2, 0, 0, 0, 0, 0, 0, 0],
    ]
    for optimise in (True, False):
        result = tokenize(data, TokenizerOptions(optimise=optimise))
        assert result.tokens.tolist() == expected
        assert not result.report.dropped


def test_corrupt_data_bytes_are_dropped_and_reported(golden_dir):
    """``edge_out_of_range``: a velocity, a pitch and a controller value >= 128."""
    result = tokenize(golden_dir / "edge_out_of_range.mid")
    np.testing.assert_array_equal(result.tokens.astype(np.int64), np.load(golden_dir / "edge_out_of_range.opt.npy"))
    assert result.report.dropped["out_of_range"] == 3


def test_short_chunk_unknown_chunk_and_bytes_after_end_of_track_warn(golden_dir):
    result = tokenize(golden_dir / "edge_chunk_quirks.mid")
    np.testing.assert_array_equal(result.tokens.astype(np.int64), np.load(golden_dir / "edge_chunk_quirks.opt.npy"))
    warnings = "\n".join(result.report.warnings)
    assert "after End-of-Track are ignored" in warnings
    assert "has type b'XTRK'" in warnings
    assert "declares 1000 bytes but only 13 remain" in warnings


def test_short_chunk_is_ignored_like_the_reference(midi):
    whole = tokenize(midi.smf(midi.NOTE_TRACK))
    cut = tokenize(midi.smf(midi.chunk(midi.NOTE_TRACK), midi.chunk(midi.NOTE_TRACK, length=100), raw_chunks=True))
    np.testing.assert_array_equal(cut.tokens, whole.tokens)
    assert any("declares 100 bytes but only 13 remain" in w for w in cut.report.warnings)


def test_unknown_chunk_is_read_as_a_track(midi):
    plain = tokenize(midi.smf(midi.NOTE_TRACK, midi.NOTE_TRACK))
    odd = tokenize(midi.smf(midi.chunk(midi.NOTE_TRACK), midi.chunk(midi.NOTE_TRACK, kind=b"JUNK"), raw_chunks=True))
    np.testing.assert_array_equal(odd.tokens, plain.tokens)
    assert any("type b'JUNK'" in w for w in odd.report.warnings)


def test_running_status_at_track_start_discards_the_track(golden_dir, midi):
    result = tokenize(golden_dir / "edge_no_status.mid")
    np.testing.assert_array_equal(result.tokens.astype(np.int64), np.load(golden_dir / "edge_no_status.opt.npy"))
    assert any("track 0 starts in running status" in w for w in result.report.warnings)
    inline = tokenize(midi.smf(b"\x00\x3c\x50" + midi.NOTE_TRACK, midi.NOTE_TRACK))
    np.testing.assert_array_equal(inline.tokens, tokenize(midi.smf(midi.END, midi.NOTE_TRACK)).tokens)


def test_smpte_division_converts_and_warns(midi):
    frames_24_ticks_10 = (0xE8 << 8) | 10  # 240 ticks per second: 120 ticks per beat at 120 bpm
    tempo = b"\x00\xff\x51\x03\x07\xa1\x20"
    result = tokenize(midi.smf(tempo + b"\x00\x90\x3c\x50\x81\x70\x80\x3c\x40" + midi.END, division=frames_24_ticks_10))
    assert result.report.ticks_per_beat == 120
    assert result.report.dropped["smpte_tempo"] == 1
    note = result.tokens[result.tokens[:, 0] == 3][0]
    assert note[7] - 153 == 32  # 240 ticks = 1 second = 2 beats at 120 bpm


def test_mutated_files_raise_midilm_errors_or_tokenize(golden_dir):
    """Truncations and byte flips of real files never raise anything but a
    MidilmError (no IndexError, no hang)."""
    rng = random.Random(7)
    sources = sorted(golden_dir.glob("*.mid"))
    for _ in range(300):
        data = bytearray(rng.choice(sources).read_bytes())
        for _ in range(rng.randint(1, 4)):
            if data and rng.random() < 0.3:
                del data[rng.randrange(len(data)) :]
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            result = tokenize(bytes(data), TokenizerOptions(optimise=rng.random() < 0.5))
        except MidilmError:
            continue
        report = result.report
        assert report.input_events + sum(report.added.values()) == report.output_events + sum(report.dropped.values())


def test_a_long_quantity_does_not_stop_a_batch(midi):
    """Issue 15, rows 2 and 3: a 2,040-byte delta time is refused with the
    reason (no huge number in the message) and the next file is tokenized."""
    from midilm.tokenizer import tokenize_many

    bad = midi.smf(b"\x00\x90\x3c\x50" + b"\xff" * 2040 + b"\x7f\x80\x3c\x40" + midi.END)
    good = midi.smf(midi.NOTE_TRACK)
    first, second = tokenize_many([bad, good])
    assert isinstance(first, MidiFileError) and len(str(first)) < 200
    np.testing.assert_array_equal(second.tokens, tokenize(good).tokens)


def test_files_over_the_size_limit_are_refused_before_reading(midi, tmp_path):
    from midilm.tokenizer import read_score, tokenize_many

    data = midi.smf(midi.NOTE_TRACK)
    path = tmp_path / "song.mid"
    path.write_bytes(data)
    for source in (path, data):
        with pytest.raises(MidiFileError, match="over the size limit of"):
            tokenize(source, max_bytes=len(data) - 1)
        with pytest.raises(MidiFileError, match="over the size limit"):
            read_score(source, max_bytes=10)
        assert len(tokenize(source, max_bytes=len(data)).tokens) == 4
    refused, kept = tokenize_many([path, midi.smf(midi.END)], max_bytes=len(data) - 1)
    assert isinstance(refused, MidiFileError) and str(path) in str(refused)
    assert not isinstance(kept, MidiFileError)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_only_regular_files_are_read(tmp_path):
    fifo = tmp_path / "pipe.mid"
    os.mkfifo(fifo)
    with pytest.raises(MidiFileError, match="not a regular file"):
        tokenize(fifo)
    with pytest.raises(MidiFileError, match="not a regular file"):
        tokenize(tmp_path)


def test_memory_error_is_caught_per_file(golden_dir, monkeypatch):
    """A file that runs out of memory becomes an error in its place; the
    batch is retried file by file, so the others are tokenized."""
    from midilm.tokenizer import api, tokenize_many

    real = api.encode_events
    sources = [golden_dir / "bach_bwv1.6.mid", golden_dir / "m21_test04.mid", golden_dir / "bach_bwv10.7.mid"]

    def fail_on_large(events, batch, options):
        if max(report.input_events for report in batch.reports) > 1000:
            raise MemoryError
        return real(events, batch, options)

    monkeypatch.setattr(api, "encode_events", fail_on_large)
    results = list(tokenize_many(sources))
    assert isinstance(results[1], MidiFileError) and "not enough memory" in str(results[1]) and "m21_test04" in str(results[1])
    for source, result in zip(sources[::2], results[::2], strict=True):
        np.testing.assert_array_equal(result.tokens, real_tokens(source))
    with pytest.raises(MidiFileError, match="not enough memory"):
        tokenize(sources[1])


def real_tokens(path):
    from midilm.tokenizer import TokenizerOptions as Options
    from midilm.tokenizer.encoder import encode
    from midilm.tokenizer.reader import read_midi
    from midilm.tokenizer.report import TokenizeReport

    return encode(read_midi(path.read_bytes()), Options(), TokenizeReport())
