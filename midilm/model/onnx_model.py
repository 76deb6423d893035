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

import numpy as np

from midilm.errors import CheckpointError, ConfigError
from midilm.model.config import ModelConfig
from midilm.model.fast_decoding import STEP_DECODERS, StepCache
from midilm.model.window import EventDecoder

FORMAT = "midilm-onnx"
FORMAT_VERSION = 2
"""2: cached graphs write their KV cache in place (``present_*`` outputs bound to the ``past_*`` buffers)."""
MODEL_FILE = "model.json"


def has_onnxruntime() -> bool:
    """Whether ONNX Runtime is installed (the ``[onnx]`` extra)."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


class OrtRunner:
    """ONNX Runtime sessions of the step graphs, on the CPU with ``threads`` threads.

    Each graph has a session with its dynamic axes (a window's first step) and,
    made on first use, sessions with the batch size (and, for the cached
    graphs, one new position) fixed: ONNX Runtime then folds the shape
    arithmetic of those axes away, a third of a one-token step's nodes."""

    def __init__(self, graphs: dict[str, bytes | str], threads: int) -> None:
        self.graphs = graphs
        self.threads = threads
        self.sessions = {name: self._session(source, {}) for name, source in graphs.items()}
        self.input_names = {name: [i.name for i in session.get_inputs()] for name, session in self.sessions.items()}
        self.output_names = {name: [o.name for o in session.get_outputs()] for name, session in self.sessions.items()}
        self._fixed: dict[tuple[str, int, bool], Any] = {}

    def _session(self, source: bytes | str, fixed_axes: dict[str, int]) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        for axis, size in fixed_axes.items():
            options.add_free_dimension_override_by_name(axis, size)
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])

    def session(self, graph: str, batch_size: int, *, one_position: bool = False) -> Any:
        """The graph's session for ``batch_size`` rows (and, with ``one_position``, one new position per step)."""
        key = (graph, batch_size, one_position)
        if key not in self._fixed:
            axes = {"batch": batch_size} | ({"new": 1} if one_position else {})  # the axis names of midilm.model.steps
            self._fixed[key] = self._session(self.graphs[graph], axes)
        return self._fixed[key]

    def run(self, graph: str, inputs: list[Any]) -> list[Any]:
        session = self.session(graph, len(inputs[0]))
        return session.run(None, dict(zip(self.input_names[graph], inputs, strict=True)))

    def new_cache(self, shapes: list[tuple[int, int, int]], batch_size: int) -> OrtStepCache:
        return OrtStepCache(self, shapes, batch_size)

    def running(self, threads: int) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()  # the sessions' threads were set when they were made


class OrtStepCache(StepCache):
    """The KV cache as ONNX Runtime values bound to each cached graph both as
    its past inputs and as its present outputs: the graph's attention
    (``GroupQueryAttention``) writes the new positions into the buffers it reads,
    so no cache crosses into Python or is copied between steps."""

    def __init__(self, runner: OrtRunner, shapes: list[tuple[int, int, int]], batch_size: int) -> None:
        super().__init__(shapes)
        self.runner = runner
        self.batch_size = batch_size
        self.past = [_shared(np.zeros((batch_size, h, c, d), dtype=np.float32)) for h, c, d in shapes * 2]
        self.start = np.zeros((), dtype=np.int64)  # bound once: each step writes its start here
        self.outputs: dict[str, np.ndarray] = {}  # each graph's first output, bound once
        self.bound: dict[tuple[str, bool], tuple[Any, Any, np.ndarray | None]] = {}

    def _bound(self, graph: str, positions: np.ndarray) -> tuple[Any, Any, np.ndarray | None]:
        """The session for these positions, its binding of the cache, start and output, and (one-position
        steps) the positions buffer it reads; made once per graph and kind of step."""
        one_position = positions.shape[1] == 1
        key = (graph, one_position)
        if key not in self.bound:
            session = self.runner.session(graph, self.batch_size, one_position=True) if one_position else self.runner.sessions[graph]
            binding = session.io_binding()
            inputs, outputs = self.runner.input_names[graph], self.runner.output_names[graph]
            if graph not in self.outputs:
                width = self.runner.sessions[graph].get_outputs()[0].shape[1]  # [batch, V] logits or [batch, d] state
                self.outputs[graph] = np.zeros((self.batch_size, width), dtype=np.float32)
            buffer = np.zeros_like(positions) if one_position else None
            for name, value in [*zip(inputs[2:], self.past, strict=True), (inputs[1], self.start), (inputs[0], buffer)]:
                if value is not None:
                    binding.bind_ortvalue_input(name, _shared(value))
            for name, value in zip(outputs, [self.outputs[graph], *self.past], strict=True):
                binding.bind_ortvalue_output(name, _shared(value))
            self.bound[key] = (session, binding, buffer)
        return self.bound[key]

    def _run(self, graph: str, positions: np.ndarray) -> np.ndarray:
        session, binding, buffer = self._bound(graph, positions)
        if buffer is not None:
            buffer[...] = positions
        else:
            binding.bind_cpu_input(self.runner.input_names[graph][0], positions)
        self.start[...] = self.length
        session.run_with_iobinding(binding)
        return self.outputs[graph].copy()


def _shared(values: Any) -> Any:
    """An ONNX Runtime value over a numpy array's memory (an OrtValue as it is)."""
    import onnxruntime as ort

    return values if isinstance(values, ort.OrtValue) else ort.OrtValue.ortvalue_from_numpy(values)


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
    if record.get("format_version", 0) < FORMAT_VERSION:
        raise CheckpointError(
            f"{record_path}: written by an older midilm (format {record.get('format_version')}, whose steps return their new keys "
            f"instead of writing the cache); export the checkpoint again with `midilm export --format onnx`"
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
