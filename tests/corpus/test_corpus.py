"""The bundled corpus: which pieces each named corpus holds, their licences, and the
conversion of a handful of pieces (quirks included) against the golden MIDI files."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from midilm.data import PrepareOptions, TokenStore, default_store_path, prepare, prepare_corpus
from midilm.data.corpus import CORPORA, DEFAULT_CORPUS, LICENCES, CorpusUnit, convert_units, corpus_units
from midilm.data.corpus import convert as conversion
from midilm.data.corpus.catalog import corpus_root, get_definition
from midilm.data.sources import SourceFile
from midilm.errors import ConfigError
from midilm.tokenizer import read_score


def collections(units: list[CorpusUnit]) -> set[str]:
    return {PurePosixPath(u.source).parts[0] for u in units}


def tracks_of_notes(midi: bytes | Path) -> list[list[list]]:
    """The notes of each track of a MIDI file, in the order they start."""
    tracks = read_score(midi).to_list()[1:]
    return [sorted((e for e in track if e[0] == "note"), key=lambda note: note[1]) for track in tracks]


def test_default_corpus_is_big_polyphonic_and_clean():
    units = corpus_units(DEFAULT_CORPUS)
    pieces = [out for u in units for out in u.outputs()]
    assert len(pieces) >= 2000
    assert collections(units) == {"bach", "essenFolksong"}
    assert sum(1 for u in units if u.source.startswith("bach/")) >= 400
    assert not any(u.source.endswith((".krn", ".rntxt")) for u in units)
    assert {u.licence for u in units} == {"music21-corpus", "essen-noncommercial"}
    assert len({midi for midi, _ in pieces}) == len(pieces)


def test_larger_corpora_leave_out_what_they_must():
    everything = corpus_units("music21-all")
    sources = {u.source for u in everything}
    assert "palestrina" not in collections(everything)
    assert not collections(everything) & {"demos", "theoryExercises"}
    assert "leadSheet/berlinAlexandersRagtime.mxl" not in sources and "leadSheet/fosterBrownHair.mxl" in sources
    assert {u.licence for u in everything} <= set(LICENCES) - {"palestrina-restricted"}
    assert sum(len(u.outputs()) for u in everything) > 13000
    outputs = [midi for u in everything for midi, _ in u.outputs()]
    assert len(set(outputs)) == len(outputs)  # one encoding per piece: no MIDI path twice
    assert "beethoven/opus18no1/movement1.mxl" in sources and "beethoven/opus18no1/movement1.krn" not in sources
    palestrina = corpus_units("music21-palestrina")
    assert collections(palestrina) == {"palestrina"} and {u.licence for u in palestrina} == {"palestrina-restricted"}
    josquin = [u for u in everything if u.source.startswith("josquin/")]
    assert josquin and all(u.merge_tunes and len(u.outputs()) == 1 for u in josquin)
    with pytest.raises(ConfigError, match="unknown corpus"):
        get_definition("music21-everything")
    assert DEFAULT_CORPUS in CORPORA


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    units = [
        CorpusUnit("bach/bwv1.6.mxl", "music21-corpus"),
        CorpusUnit("essenFolksong/altdeu10.abc", "essen-noncommercial", tunes=(1, 5)),
        CorpusUnit("oneills1850/0001-0050.abc", "music21-corpus", tunes=(1,)),
        CorpusUnit("miscFolk/americanfifeopus.abc", "music21-corpus", tunes=(8,)),
    ]
    folder = tmp_path_factory.mktemp("m21")
    results, fresh = convert_units(units, folder, workers=1, progress=False)
    return folder, units, results, fresh


def test_conversion_matches_the_golden_midi(converted, golden_dir):
    folder, units, results, fresh = converted
    assert fresh == {u.id for u in units} and all(p.ok for r in results for p in r.pieces)
    assert (folder / "midi/bach/bwv1.6.mid").read_bytes() == (golden_dir / "bach_bwv1.6.mid").read_bytes()
    assert (folder / "midi/essenFolksong/altdeu10/0001.mid").read_bytes() == (golden_dir / "folk_essen_altdeu10_1.mid").read_bytes()
    origins = [p.origin for r in results for p in r.pieces]
    assert origins[:3] == ["music21:bach/bwv1.6.mxl", "music21:essenFolksong/altdeu10.abc#1", "music21:essenFolksong/altdeu10.abc#5"]


def test_shared_time_signature_quirk_is_rescued(converted):
    folder = converted[0]
    # music21's own export fails on this tune ("already found in this Stream")
    assert sum(len(notes) for notes in tracks_of_notes(folder / "midi/essenFolksong/altdeu10/0005.mid")) > 20


def test_voices_without_notes_are_dropped_when_they_stop_the_export(converted):
    # two of this tune's twelve voices never play: music21's repeat expansion refuses them
    with_notes = [notes for notes in tracks_of_notes(converted[0] / "midi/miscFolk/americanfifeopus/0008.mid") if notes]
    assert len(with_notes) == 10


def test_ties_between_different_pitches_are_undone(converted):
    # O'Neill 1 opens "G3-A": both notes must sound, not one long G
    (melody,) = [notes for notes in tracks_of_notes(converted[0] / "midi/oneills1850/0001-0050/0001.mid") if notes]
    assert [note[4] for note in melody[:3]] == [67, 69, 70]


def test_conversion_is_cached_and_failures_are_recorded(converted):
    folder, units, _, _ = converted
    _, fresh = convert_units(units, folder, workers=1, progress=False)
    assert fresh == set()
    (slow,), fresh = convert_units(
        [CorpusUnit("bach/bwv10.7.mxl", "music21-corpus")], folder, workers=1, cpu_limit_seconds=0.001, progress=False
    )
    assert len(fresh) == 1 and not slow.pieces[0].ok and slow.pieces[0].gave_up
    _, fresh = convert_units([slow.unit], folder, workers=1, cpu_limit_seconds=0.001, progress=False)
    assert fresh == set()  # the same limit: the failure is remembered
    (retried,), fresh = convert_units([slow.unit], folder, workers=1, progress=False)
    assert len(fresh) == 1 and retried.pieces[0].ok  # a larger limit tries again


def test_prepared_corpus_records_licence_and_origin(converted, tmp_path):
    folder, _, results, _ = converted
    files = [SourceFile((folder / "midi" / p.midi).as_posix(), p.midi, p.licence, p.origin) for r in results for p in r.pieces]
    prepare(files, tmp_path / "store", PrepareOptions(workers=1), progress=False)
    rows = {r["origin"]: r for r in TokenStore(tmp_path / "store").records}
    assert rows["music21:bach/bwv1.6.mxl"]["licence"] == "music21-corpus"
    assert rows["music21:essenFolksong/altdeu10.abc#5"]["licence"] == "essen-noncommercial"
    assert all(r["status"] == "ok" for r in rows.values())


def test_prepare_corpus_with_limit_converts_only_the_sample(tmp_path, monkeypatch):
    monkeypatch.setenv("MIDILM_HOME", str(tmp_path / "home"))
    options = PrepareOptions(limit=3, workers=1)
    summary = prepare_corpus("music21-bach", options=options, progress=False)
    assert summary.corpus.converted == 3 and summary.tokenized == 3
    store = TokenStore(default_store_path("music21-bach"))
    assert store.path == tmp_path / "home" / "stores" / "music21-bach"
    assert [r["licence"] for r in store.records] == ["music21-corpus"] * 3
    assert all(r["origin"].startswith("music21:bach/") for r in store.records)
    assert store.header["corpus"]["name"] == "music21-bach"
    again = prepare_corpus("music21-bach", options=options, progress=False)
    assert (again.corpus.converted, again.tokenized, again.committed) == (0, 0, False)
    assert "3 pieces (0 converted now, 3 from the cache), 3 MIDI files" in again.format()
    assert "licences: 3 music21-corpus" in again.format()


def test_badly_formed_repeats_are_played_through_once():
    from music21 import bar, note, stream

    from midilm.data.corpus.convert import _midi_bytes

    part = stream.Part()
    for i in range(4):
        measure = stream.Measure(number=i + 1)
        measure.append(note.Note(60 + i, quarterLength=4))
        part.append(measure)
    for number in (2, 3):  # two start marks, no end: music21 cannot expand them
        part.measure(number).leftBarline = bar.Repeat(direction="start")
    score = stream.Score()
    score.insert(0, part)
    assert not conversion._expands_to_itself(score)  # repeat marks: only the reference export may write it
    assert [note[4] for notes in tracks_of_notes(_midi_bytes(score)) for note in notes] == [60, 61, 62, 63]


@pytest.mark.parametrize(
    ("source", "tune", "in_place"),
    [
        ("bach/bwv1.6.mxl", None, True),
        ("essenFolksong/altdeu10.abc", 5, True),
        ("oneills1850/0001-0050.abc", 1, True),
        ("bach/bwv103.6.mxl", None, False),  # repeat barlines
        ("miscFolk/americanfifeopus.abc", 8, False),  # a voice without measures, which the reference export repairs
    ],
)
def test_the_export_without_a_copy_writes_the_reference_bytes(source: str, tune: int | None, in_place: bool):
    path = corpus_root() / source

    def parsed():
        return conversion._parsed(path, tune, merge_tunes=False)

    assert conversion._expands_to_itself(parsed()) is in_place
    reference = conversion._midi_bytes(parsed())
    assert conversion._piece_midi(path, tune, merge_tunes=False) == reference
    if in_place:
        assert conversion._export_in_place(parsed()) == reference


def test_a_failed_export_without_a_copy_starts_again_from_the_file(monkeypatch):
    path = corpus_root() / "essenFolksong/altdeu10.abc"
    reference = conversion._midi_bytes(conversion._parsed(path, 5, merge_tunes=False))

    def fails(score):
        score.remove(score.parts[0])  # what a failed export may leave behind
        raise ValueError("export failed half-way")

    monkeypatch.setattr(conversion, "_export_in_place", fails)
    assert conversion._piece_midi(path, 5, merge_tunes=False) == reference
