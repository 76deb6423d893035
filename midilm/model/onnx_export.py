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

import numpy as np
import torch
from torch import nn

from midilm import __version__
from midilm.errors import ConfigError
from midilm.model.onnx_model import FORMAT, FORMAT_VERSION, MODEL_FILE
from midilm.model.steps import step_graphs

OPSET = 17
WEIGHTS = ("full", "int8")
INT8_BLOCK = 32
"""Weights per int8 scale along the input axis (MatMulNBits blocks)."""
INT8_ZERO = 128
"""MatMulNBits' zero point for 8-bit weights stored as uint8 without explicit zero points."""


def _rms_norm(g: Any, x: Any, normalized_shape: Any, weight: Any, eps: Any) -> Any:
    """``aten::rms_norm`` over the last axis in opset-17 operators (the exporter has no rule for it)."""
    from torch.onnx import symbolic_helper

    eps_value = symbolic_helper._maybe_get_const(eps, "f")
    # Pow, not Mul: ONNX Runtime fuses this pattern into one SimplifiedLayerNormalization node
    square = g.op("Pow", x, g.op("Constant", value_t=torch.tensor(2.0, dtype=torch.float32)))
    mean_square = g.op("ReduceMean", square, axes_i=[-1], keepdims_i=1)
    root = g.op("Sqrt", g.op("Add", mean_square, g.op("Constant", value_t=torch.tensor(eps_value, dtype=torch.float32))))
    return g.op("Mul", g.op("Div", x, root), weight)


def graph_bytes(model: nn.Module, weights: str = "full") -> dict[str, bytes]:
    """Each step graph of a model (eval mode) as ONNX bytes, with float32
    weights (``full``) or 8-bit ones (``int8``, :func:`with_int8_weights`)."""
    if weights not in WEIGHTS:
        raise ConfigError(f"ONNX export weights: {weights!r} is not one of {', '.join(WEIGHTS)}")
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
                custom_opsets={"com.microsoft": 1},
            )
        out[name] = buffer.getvalue() if weights == "full" else with_int8_weights(buffer.getvalue())
    return out


def with_int8_weights(graph: bytes) -> bytes:
    """The graph with every matrix product by a weight turned into ONNX Runtime's
    ``MatMulNBits`` (``com.microsoft``): 8-bit weights, one float scale per
    block of 32 inputs of each output, products in int8 (``accuracy_level`` 4).
    Reads a quarter of the bytes per token; logits move by about 0.02, as with
    the torch int8 path. Runs in ONNX Runtime only (CPU, and its web and GPU builds)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(graph)
    weights = {init.name: init for init in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        weight = numpy_helper.to_array(weights[node.input[1]]) if node.op_type == "MatMul" and node.input[1] in weights else None
        if weight is None or weight.ndim != 2 or weight.shape[0] % INT8_BLOCK:
            nodes.append(node)
            continue
        k, n = weight.shape
        blocks = weight.astype(np.float32).T.reshape(n, k // INT8_BLOCK, INT8_BLOCK)  # (N, blocks, block)
        scales = np.maximum(np.abs(blocks).max(axis=-1), 1e-12) / 127
        quantized = (np.round(blocks / scales[..., None]) + INT8_ZERO).astype(np.uint8)
        name = node.input[1]
        model.graph.initializer.extend(
            [
                numpy_helper.from_array(quantized, f"{name}_int8"),
                numpy_helper.from_array(scales.reshape(-1).astype(np.float32), f"{name}_scale"),
            ]
        )
        nodes.append(
            helper.make_node(
                "MatMulNBits",
                [node.input[0], f"{name}_int8", f"{name}_scale"],
                list(node.output),
                name=f"{node.name}_int8",
                domain="com.microsoft",
                K=k,
                N=n,
                bits=8,
                block_size=INT8_BLOCK,
                accuracy_level=4,
            )
        )
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {name for node in model.graph.node for name in node.input}
    kept = [init for init in model.graph.initializer if init.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    if not any(opset.domain == "com.microsoft" for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model.SerializeToString()


def model_record(model: nn.Module, run_json: dict[str, Any], meta: dict[str, Any], weights: str = "full") -> dict[str, Any]:
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
        "weights": weights,
        "run": run_json,
        "meta": meta,
    }


def export_onnx(model: nn.Module, run_json: dict[str, Any], meta: dict[str, Any], out_dir: Path, weights: str = "full") -> list[Path]:
    """Write the ONNX folder of ``model`` (a copy is exported; the model is not changed)
    with ``full`` (float32) or ``int8`` weights; returns the files written."""
    import copy

    model = copy.deepcopy(model).cpu()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in graph_bytes(model, weights).items():
        path = out_dir / f"{name}.onnx"
        path.write_bytes(data)
        written.append(path)
    record = out_dir / MODEL_FILE
    record.write_text(json.dumps(model_record(model, run_json, meta, weights), indent=2))
    return [*written, record]
