"""A MIDI file as a generation prompt, tokenized exactly as the model's training data was."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from midilm import vocab
from midilm.errors import ConfigError
from midilm.sample.clock import onset_seconds


def tokenizer_options(spec: dict[str, Any]):
    """The ``TokenizerOptions`` a spec (as stored in stores and checkpoints) describes;
    the defaults when the spec is empty (a notebook checkpoint records none)."""
    from midilm.tokenizer import TokenizerOptions

    names = {f.name for f in dataclasses.fields(TokenizerOptions)}
    return TokenizerOptions(**{k: v for k, v in spec.items() if k in names})


def load_prompt(path: str | Path, tokenizer_spec: dict[str, Any], *, events: int = 0, seconds: float = 0.0) -> np.ndarray:
    """The BOS row and the first ``events`` events of a MIDI file (or the events
    starting before ``seconds``; the whole file when neither is given)."""
    from midilm.tokenizer import tokenize

    if events and seconds:
        raise ConfigError("give --prompt-events or --prompt-seconds, not both")
    rows = tokenize(path, tokenizer_options(tokenizer_spec)).tokens
    if len(rows) and rows[-1, 0] == vocab.EOS:
        rows = rows[:-1]
    if events:
        rows = rows[: 1 + events]
    elif seconds:
        rows = rows[onset_seconds(rows) < seconds]
    if len(rows) < 2:
        raise ConfigError(f"{path}: the prompt holds no events (the file has none, or the cut is too short)")
    return rows
