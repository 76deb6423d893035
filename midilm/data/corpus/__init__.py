"""The bundled default corpus: music21's corpus, converted to MIDI on the user's machine."""

from midilm.data.corpus.build import CONVERSION_VERSION, CorpusBuild, build_corpus, cache_folder, convert_units
from midilm.data.corpus.catalog import CORPORA, DEFAULT_CORPUS, LICENCES, CorpusDefinition, CorpusUnit, corpus_units

__all__ = [
    "CONVERSION_VERSION",
    "CORPORA",
    "DEFAULT_CORPUS",
    "LICENCES",
    "CorpusBuild",
    "CorpusDefinition",
    "CorpusUnit",
    "build_corpus",
    "cache_folder",
    "convert_units",
    "corpus_units",
]
