"""midilm: MIDI as language.

The public API is imported lazily, so ``import midilm`` (and the tokenizer)
never pays for torch; the model, training and generation parts load on first
use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    # name -> module that defines it
    "MidilmError": "midilm.errors",
    "MidiFileError": "midilm.errors",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'midilm' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
