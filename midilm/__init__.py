"""midilm: MIDI as language.

The public API is imported lazily, so ``import midilm`` (and the tokenizer)
never pays for torch; the model, training and generation parts load on first
use.
"""

from __future__ import annotations

from midilm.lazy import lazy_exports

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    # name -> module that defines it, in data-flow order
    "TokenizerOptions": "midilm.tokenizer",
    "tokenize": "midilm.tokenizer",
    "tokenize_many": "midilm.tokenizer",
    "load_tokens": "midilm.tokenizer",
    "detokenize": "midilm.tokenizer",
    "tokens_to_midi": "midilm.tokenizer",
    "augment": "midilm.tokenizer",
    "check_quality": "midilm.tokenizer",
    "summarize": "midilm.tokenizer",
    "prepare": "midilm.data",
    "PrepareOptions": "midilm.data",
    "TokenStore": "midilm.data",
    "TokenWindows": "midilm.data",
    "EventWindows": "midilm.data",
    "ModelConfig": "midilm.model",
    "preset_config": "midilm.model",
    "build_model": "midilm.model",
    "TrainConfig": "midilm.train",
    "start_run": "midilm.train",
    "resume_run": "midilm.train",
    "load_for_inference": "midilm.train",
    "load_onnx": "midilm.model.onnx_model",
    "load_model": "midilm.hub",
    "export_model": "midilm.hub",
    "ExportRequest": "midilm.hub",
    "SamplingConfig": "midilm.sample",
    "Controls": "midilm.sample",
    "generate": "midilm.sample",
    "stream": "midilm.sample",
    "accompany": "midilm.sample",
    "infill": "midilm.sample",
    "render_wav": "midilm.render",
    "render_piano_roll": "midilm.render",
    "evaluate_checkpoint": "midilm.evaluate",
    "MidilmError": "midilm.errors",
    "MidiFileError": "midilm.errors",
}

__getattr__ = lazy_exports(__name__, _LAZY)
__all__ = sorted(_LAZY)
