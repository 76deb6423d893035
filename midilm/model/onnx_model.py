"""An exported model (``midilm export --format onnx``) run by ONNX Runtime, with no torch import.

The folder (see :mod:`midilm.model.onnx_export`) holds the step graphs and
``model.json``. :class:`OnnxModel` gives the sampler what a torch model gives
it, a decoder per batch (:meth:`OnnxModel.sampling_decoder`), so ``midilm
generate``, the app and :func:`midilm.generate` sample from it with the same
algorithm; the grammar masks, the choice of tokens and the music clock run on
numpy. The same class serves a torch model's CPU default, from graphs
exported in memory (:func:`midilm.model.sampling.sampling_decoder`).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from midilm.errors import CheckpointError, ConfigError
from midilm.model.config import ModelConfig
from midilm.model.fast_decoding import STEP_DECODERS
from midilm.model.window import EventDecoder

FORMAT = "midilm-onnx"
FORMAT_VERSION = 1
MODEL_FILE = "model.json"


def has_onnxruntime() -> bool:
    """Whether ONNX Runtime is installed (the ``[onnx]`` extra)."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


class OrtRunner:
    """One ONNX Runtime session per step graph, on the CPU with ``threads`` threads."""

    def __init__(self, graphs: dict[str, bytes | str], threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sessions = {name: ort.InferenceSession(source, options, providers=["CPUExecutionProvider"]) for name, source in graphs.items()}
        self.input_names = {name: [i.name for i in session.get_inputs()] for name, session in self.sessions.items()}

    def run(self, graph: str, inputs: list[Any]) -> list[Any]:
        return self.sessions[graph].run(None, dict(zip(self.input_names[graph], inputs, strict=True)))

    def running(self, threads: int) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()  # the sessions' threads were set when they were made


class OnnxModel:
    """An exported model's config and step graphs; sessions are made on first use, one set per thread count."""

    def __init__(self, record: dict[str, Any], graphs: dict[str, bytes | str]) -> None:
        self.record = record
        self.config = ModelConfig(**record["run"]["model"])
        self.family = record["family"]
        self.shapes = [tuple(shape) for shape in record["layer_shapes"]]
        self.graphs = graphs
        self._runners: dict[int, OrtRunner] = {}

    def runner(self, threads: int) -> OrtRunner:
        if threads not in self._runners:
            self._runners[threads] = OrtRunner(self.graphs, threads)
        return self._runners[threads]

    def sampling_decoder(self, batch_size: int, config: Any, *, cache: bool = True) -> EventDecoder:
        """A decoder for ``batch_size`` samples with ``config.threads`` CPU threads (0: ONNX Runtime's default)."""
        if not cache:
            raise ConfigError("an ONNX model has no reference (cache-free) decoder; sample the torch checkpoint for that")
        return STEP_DECODERS[self.family](
            self.runner(config.threads), self.shapes, self.config.context_events, self.config.vocab_size, batch_size
        )


@dataclass
class LoadedOnnx:
    """An exported model ready to sample, and where it came from (the fields of a torch ``LoadedModel``)."""

    model: OnnxModel
    run: Any
    source: Path
    meta: dict[str, Any]


def is_onnx_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder written by ``midilm export --format onnx``."""
    return (Path(path) / MODEL_FILE).is_file()


def load_onnx(path: str | Path) -> LoadedOnnx:
    """Read an exported folder; refuses another format, a newer format version or a missing graph."""
    from midilm.config import from_dict
    from midilm.train.config import DataRef, RunConfig

    folder = Path(path)
    record_path = folder / MODEL_FILE
    try:
        record = json.loads(record_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{record_path}: not a readable model record: {exc}") from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(
            f"{record_path}: not a midilm ONNX export (format {record.get('format') if isinstance(record, dict) else None!r})"
        )
    if record.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{record_path}: written by a newer midilm (format {record['format_version']}); this one reads {FORMAT_VERSION}"
        )
    if not has_onnxruntime():
        raise ConfigError(f"{folder}: running an ONNX model needs onnxruntime: pip install 'midilm[onnx]'")
    graphs = {}
    for name, file_name in record["graphs"].items():
        graph_path = folder / file_name
        if not graph_path.is_file():
            raise CheckpointError(f"{graph_path}: missing graph {name!r} of this export")
        graphs[name] = str(graph_path)
    model = OnnxModel(record, graphs)
    # the run config as export wrote it (today's form), read without RunConfig.from_json_dict, which imports the architectures
    run_json = record["run"]
    data = from_dict(DataRef, run_json.get("data", {}), source=f"{record_path}:data")
    run = RunConfig(model=model.config, data=data, vocab=run_json.get("vocab", {}), midilm_version=run_json.get("midilm_version", ""))
    return LoadedOnnx(model, run, folder, record.get("meta", {}))
