"""Which decoder samples a torch model: the fast CPU path by default, the eager one as the reference.

``decoder`` (a sampling setting):

- ``onnx``: the model's step graphs exported in memory and run by ONNX Runtime
  (the CPU default when the ``[onnx]`` extra is installed): no per-operation
  overhead of eager PyTorch; 8-bit weights unless ``weights`` is ``full``;
- ``compile``: the same step graphs through ``torch.compile`` (needs a C++
  compiler; measured slower than ONNX Runtime on one thread, see BENCHMARKS.md);
- ``eager``: the torch cached decoder, with int8 weights on a CPU by default
  (``weights``); what GPUs use;
- ``auto``: ``onnx`` on a CPU when ONNX Runtime and the exporter are installed, else ``eager``.

The exported, compiled and 8-bit copies are made once per model and weights: a
model trained further in place (its parameters' versions change) gets new ones.
"""

from __future__ import annotations

import copy
import importlib.util
import weakref
from typing import Any

from torch import nn

from midilm.errors import ConfigError
from midilm.model.decoding import make_decoder
from midilm.model.fast_decoding import STEP_DECODERS
from midilm.model.window import EventDecoder

DECODERS = ("auto", "onnx", "compile", "eager")
_made: weakref.WeakKeyDictionary[nn.Module, dict[str, tuple[tuple, Any]]] = weakref.WeakKeyDictionary()


def onnx_available() -> bool:
    """Whether a torch model can be exported (``onnx``) and run (``onnxruntime``) here."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def chosen_decoder(model: nn.Module, decoder: str) -> str:
    """The decoder ``decoder`` names for this model (``auto`` resolved); refuses what cannot run here."""
    if decoder not in DECODERS:
        raise ConfigError(f"sampling decoder: {decoder!r} is not one of {', '.join(DECODERS)}")
    on_cpu = next(model.parameters()).device.type == "cpu"
    if decoder == "auto":
        return "onnx" if on_cpu and onnx_available() else "eager"
    if decoder in ("onnx", "compile") and not on_cpu:
        raise ConfigError(f"sampling decoder {decoder}: runs on the CPU; use eager (or auto) on {next(model.parameters()).device}")
    if decoder == "onnx" and not onnx_available():
        raise ConfigError("sampling decoder onnx: needs the onnx and onnxruntime packages: pip install 'midilm[onnx]'")
    return decoder


def _weights_version(model: nn.Module) -> tuple:
    """Changes whenever a parameter is replaced or modified in place (an optimizer step)."""
    return tuple((p.data_ptr(), p._version) for p in model.parameters())


def _made_for(model: nn.Module, kind: str, make: Any) -> Any:
    """What ``make(model)`` returns, kept for this model until its weights change
    (it must not refer to the model, or the model would never be freed)."""
    entries = _made.setdefault(model, {})
    version = _weights_version(model)
    if kind not in entries or entries[kind][0] != version:
        entries[kind] = (version, make(model))
    return entries[kind][1]


def onnx_twin(model: nn.Module, weights: str = "full") -> Any:
    """The model's step graphs exported in memory, as an :class:`~midilm.model.onnx_model.OnnxModel`."""
    from midilm.model.onnx_export import graph_bytes, model_record
    from midilm.model.onnx_model import OnnxModel

    record = model_record(model, {"model": vars(model.config)}, {}, weights)
    return OnnxModel(record, graph_bytes(model, weights))


def _compiled_runner(model: nn.Module) -> Any:
    from midilm.model.steps import TorchStepRunner

    return TorchStepRunner(copy.deepcopy(model), compiled=True)  # a copy: what is kept per model must not hold the model


def sampling_decoder(model: nn.Module, batch_size: int, config: Any, *, cache: bool = True) -> EventDecoder:
    """The decoder that samples ``batch_size`` sequences of ``model`` under the
    sampling ``config`` (its ``decoder``, ``weights`` and ``threads``);
    ``cache=False`` is the cache-free reference decoder."""
    if not cache:
        return make_decoder(model, batch_size, cache=False)
    model.eval()
    choice = chosen_decoder(model, config.decoder)
    if choice == "onnx":
        weights = "full" if config.weights == "full" else "int8"  # the decoder runs on a CPU, where int8 pays
        return _made_for(model, f"onnx-{weights}", lambda m: onnx_twin(m, weights)).sampling_decoder(batch_size, config)
    if choice == "compile":
        runner = _made_for(model, "compile", _compiled_runner)
        return STEP_DECODERS[model.step_family](runner, runner.shapes, model.config.context_events, model.config.vocab_size, batch_size)
    from midilm.model.int8 import wants_int8, with_int8_weights

    sampled = _made_for(model, "eager-int8", with_int8_weights) if wants_int8(model, config.weights) else model
    return make_decoder(sampled, batch_size)
