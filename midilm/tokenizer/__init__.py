"""SkyTNT v2 MIDI tokenization: exact, fast, and explicit about what it drops.

``tokenize`` turns a MIDI file into token rows ``[n_events, 8]`` and a report
of what was dropped; ``detokenize`` / ``tokens_to_midi`` go back. The
vocabulary itself lives in :mod:`midilm.vocab`. ``docs/tokenizer.md`` is the
user guide.
"""

from midilm.tokenizer.api import MAX_FILE_BYTES, Tokenized, read_score, read_scores, tokenize, tokenize_many, tokenize_score
from midilm.tokenizer.augment import AugmentMaxima, AugmentShifts, augment
from midilm.tokenizer.decode import TICKS_PER_BEAT, detokenize, score_to_midi, tokens_to_midi
from midilm.tokenizer.grammar import check_tokens, invalid_rows
from midilm.tokenizer.options import TOKENIZER_VERSION, TokenizerOptions
from midilm.tokenizer.quality import QualityThresholds, check_quality
from midilm.tokenizer.report import ADD_REASONS, DROP_REASONS, TokenizeReport
from midilm.tokenizer.score import MidiScore
from midilm.tokenizer.summary import TokenSummary, summarize
from midilm.tokenizer.token_file import load_tokens

__all__ = [
    "ADD_REASONS",
    "DROP_REASONS",
    "MAX_FILE_BYTES",
    "TICKS_PER_BEAT",
    "TOKENIZER_VERSION",
    "AugmentMaxima",
    "AugmentShifts",
    "MidiScore",
    "QualityThresholds",
    "TokenSummary",
    "TokenizeReport",
    "Tokenized",
    "TokenizerOptions",
    "augment",
    "check_quality",
    "check_tokens",
    "detokenize",
    "invalid_rows",
    "load_tokens",
    "read_score",
    "read_scores",
    "score_to_midi",
    "summarize",
    "tokenize",
    "tokenize_many",
    "tokenize_score",
    "tokens_to_midi",
]
