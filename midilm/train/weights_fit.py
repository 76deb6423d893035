"""Checking a weights file against the model its config describes, before building that model.

Loading a checkpoint rebuilds its model from the config stored with the
weights. A damaged or hostile config (``d_model`` 10^6) must be refused
before that build, which would try to allocate it. Building on PyTorch's
``meta`` device gives every tensor's shape at no memory cost, for any
architecture, to compare with the shapes in the safetensors header; a
counter on parameter registration stops the build as soon as the model
outgrows the file, so even a config of a million layers costs no more than
the file it is compared with. The context, which no weight shows for
rotary models, is bounded separately (``MAX_CONTEXT_POSITIONS``).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch.overrides import TorchFunctionMode

from midilm.errors import CheckpointError, ConfigError

MAX_CONTEXT_POSITIONS = 1 << 20
"""The largest context (in the model's positions) a checkpoint may declare: generation
allocates a cache for the whole context, and a hostile config must not make it ask for petabytes."""


class ModelTooLarge(Exception):
    """The build outgrew its budget: ``elements`` parameters in ``tensors`` tensors so far."""

    def __init__(self, elements: int, tensors: int) -> None:
        super().__init__(f"over {elements} parameters in {tensors} tensors")
        self.elements, self.tensors = elements, tensors


class _SkipMetaInit(TorchFunctionMode):
    """In-place operations on meta tensors (initialisers) do nothing; skipping
    them keeps a meta build at milliseconds (each would import PyTorch's
    Python decompositions, a second or two the first time)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        target = args[0] if args else next(iter(kwargs.values()), None)
        if name.endswith("_") and not name.endswith("__") and isinstance(target, torch.Tensor) and target.is_meta:
            return target
        return func(*args, **kwargs)


class _Budget:
    """Counts the distinct parameters registered by this thread; raises ModelTooLarge past the limits."""

    def __init__(self, max_elements: int, max_tensors: int) -> None:
        self.max_elements, self.max_tensors = max_elements, max_tensors
        self.seen: set[int] = set()
        self.elements = 0
        self.thread = threading.get_ident()

    def __call__(self, module: torch.nn.Module, name: str, parameter: torch.nn.Parameter | None) -> None:
        if parameter is None or threading.get_ident() != self.thread or id(parameter) in self.seen:
            return
        self.seen.add(id(parameter))
        self.elements += parameter.numel()
        if self.elements > self.max_elements or len(self.seen) > self.max_tensors:
            raise ModelTooLarge(self.elements, len(self.seen))


def model_state_shapes(config: Any, *, max_elements: int, max_tensors: int) -> tuple[dict[str, tuple[int, ...]], list[list[str]]]:
    """Name -> shape of every entry of the state dict of ``build_model(config)``,
    and the entries grouped by tensor (tied weights share a group; a weights
    file holds one name of each). Built on the meta device; ModelTooLarge once
    the registered parameters exceed ``max_elements`` values or
    ``max_tensors`` tensors; ConfigError for a config that cannot be built."""
    from midilm.model import build_model

    budget = _Budget(max_elements, max_tensors)
    hook = torch.nn.modules.module.register_module_parameter_registration_hook(budget)
    try:
        with torch.device("meta"), _SkipMetaInit():
            model = build_model(config)
    finally:
        hook.remove()
    state = model.state_dict(keep_vars=True)
    groups: dict[int, list[str]] = {}
    for name, tensor in state.items():
        groups.setdefault(id(tensor), []).append(name)
    return {name: tuple(tensor.shape) for name, tensor in state.items()}, list(groups.values())


def weights_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in a safetensors file, from its header alone (no tensor is read)."""
    try:
        with safe_open(str(weights), framework="pt") as handle:
            return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{weights}: not a readable safetensors file: {exc}") from exc


def check_weights_fit(weights: Path, model_config: Any) -> None:
    """Refuse a weights file whose tensors are not those of the model its run
    config describes (names, shapes, parameter count), before that model is
    built: a damaged or hostile config cannot make midilm allocate a model
    larger than the file."""
    described = describe_model(model_config)
    shapes = weights_shapes(weights)
    in_file = sum(math.prod(shape) for shape in shapes.values())
    try:
        expected, groups = model_state_shapes(model_config, max_elements=2 * in_file + 4096, max_tensors=2 * len(shapes) + 64)
    except ModelTooLarge as exc:
        raise CheckpointError(
            f"{weights}: its run config describes a model ({described}) of more than {exc.elements:,} parameters in more than "
            f"{exc.tensors} tensors; the file holds {in_file:,} in {len(shapes)}: the config and the weights disagree"
        ) from None
    except ConfigError as exc:
        raise CheckpointError(f"{weights}: damaged run config: {exc}") from exc
    if model_config.context_positions > MAX_CONTEXT_POSITIONS:
        raise CheckpointError(
            f"{weights}: its run config declares a context of {model_config.context_positions:,} positions ({described}); "
            f"midilm loads models of at most {MAX_CONTEXT_POSITIONS:,} (generation holds a cache of the whole context)"
        )
    differences = [
        f"{name}: {list(shapes[name])} in the file, {list(expected[name])} in the model"
        for name in shapes
        if name in expected and shapes[name] != expected[name]
    ]
    differences += [f"{name}: in the file, not in the model" for name in shapes if name not in expected]
    differences += [f"{group[0]}: in the model, not in the file" for group in groups if not any(name in shapes for name in group)]
    if differences:
        in_model = sum(math.prod(expected[group[0]]) for group in groups)
        raise CheckpointError(
            f"{weights}: the weights ({in_file:,} values in {len(shapes)} tensors) do not fit the model its run config describes "
            f"({described}, {in_model:,} values): "
            + "; ".join(differences[:4])
            + (f"; and {len(differences) - 4} more" if len(differences) > 4 else "")
        )


def describe_model(model_config: Any) -> str:
    """The architecture and sizes of a model config, for messages."""
    names = ("arch", "d_model", "n_heads", "n_layers", "d_ff", "context_events", "vocab_size")
    return ", ".join(f"{name} {getattr(model_config, name)}" for name in names if hasattr(model_config, name))
