"""Writing a model as a self-contained ONNX folder that samples without torch.

The folder holds one ``.onnx`` file per step graph of the model's family
(:mod:`midilm.model.steps`; weights inside, float32) and ``model.json``: the
run config (model, tokenizer, vocabulary), the checkpoint's meta, the family,
the graphs and the cache layout. :mod:`midilm.model.onnx_model` reads it with
ONNX Runtime alone. Export needs torch and the ``onnx`` package (the
``[onnx]`` extra); it uses PyTorch's TorchScript-based exporter, whose graphs
keep the step's dynamic axes (batch, new positions) without extra packages.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from midilm import __version__
from midilm.errors import ConfigError
from midilm.model.onnx_model import FORMAT, FORMAT_VERSION, MODEL_FILE
from midilm.model.steps import step_graphs

OPSET = 17


def _rms_norm(g: Any, x: Any, normalized_shape: Any, weight: Any, eps: Any) -> Any:
    """``aten::rms_norm`` over the last axis in opset-17 operators (the exporter has no rule for it)."""
    from torch.onnx import symbolic_helper

    eps_value = symbolic_helper._maybe_get_const(eps, "f")
    mean_square = g.op("ReduceMean", g.op("Mul", x, x), axes_i=[-1], keepdims_i=1)
    root = g.op("Sqrt", g.op("Add", mean_square, g.op("Constant", value_t=torch.tensor(eps_value, dtype=torch.float32))))
    return g.op("Mul", g.op("Div", x, root), weight)


def graph_bytes(model: nn.Module) -> dict[str, bytes]:
    """Each step graph of a model (float32, eval mode) as ONNX bytes."""
    try:
        import onnx  # noqa: F401  (torch's exporter needs it to serialise)
    except ImportError as exc:
        raise ConfigError("ONNX export needs the onnx package: pip install 'midilm[onnx]'") from exc
    model = model.float().eval()
    torch.onnx.register_custom_op_symbolic("aten::rms_norm", _rms_norm, OPSET)
    out: dict[str, bytes] = {}
    for name, graph in step_graphs(model).items():
        buffer = io.BytesIO()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice and tracer warnings
            torch.onnx.export(
                graph.module,
                graph.example,
                buffer,
                dynamo=False,
                opset_version=OPSET,
                input_names=graph.input_names,
                output_names=graph.output_names,
                dynamic_axes=graph.dynamic_axes,
            )
        out[name] = buffer.getvalue()
    return out


def model_record(model: nn.Module, run_json: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """What ``model.json`` says about an exported model."""
    graphs = step_graphs(model)
    cached = next(g.module for g in graphs.values() if hasattr(g.module, "shapes"))
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "midilm_version": __version__,
        "family": model.step_family,
        "graphs": {name: f"{name}.onnx" for name in graphs},
        "layer_shapes": [list(shape) for shape in cached.shapes()],
        "run": run_json,
        "meta": meta,
    }


def export_onnx(model: nn.Module, run_json: dict[str, Any], meta: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write the ONNX folder of ``model`` (a copy is exported; the model is not changed); returns the files written."""
    import copy

    model = copy.deepcopy(model).cpu()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in graph_bytes(model).items():
        path = out_dir / f"{name}.onnx"
        path.write_bytes(data)
        written.append(path)
    record = out_dir / MODEL_FILE
    record.write_text(json.dumps(model_record(model, run_json, meta), indent=2))
    return [*written, record]
