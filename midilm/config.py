"""Config dataclasses shared by the CLI, checkpoints and the Python API.

A config is a plain dataclass whose fields carry their help text in
``metadata["help"]``. This module turns such a class into argparse options
(one source of truth for ``--help``), applies parsed options back onto an
instance, and round-trips instances through JSON-able dicts, refusing unknown
keys so that a typo in a config file is an error rather than a silent default.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from midilm.errors import ConfigError
from midilm.validate import shown

C = TypeVar("C")


def help_of(field: dataclasses.Field) -> str:
    return field.metadata.get("help", "")


def _base_type(annotation: Any) -> tuple[type, bool]:
    """The scalar type of a field annotation and whether it may be None."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _base_type(args[0])[0], True
        raise TypeError(f"unsupported union annotation {annotation!r}")
    return annotation, False


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_dataclass_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    skip: tuple[str, ...] = (),
    dest_prefix: str = "",
    defaults: Any = None,
    default_text: str | None = None,
) -> None:
    """Add one ``--option`` per field of ``cls``; defaults are left as None
    (``argparse.SUPPRESS``-like) so that :func:`apply_arguments` can tell
    which options the user actually gave.

    The help of each option ends with its default: the field's, or its value
    in ``defaults`` (an instance of ``cls``, for a command that starts from
    other values), unless it is empty or drawn afresh (``default_factory``);
    ``default_text`` replaces every default shown (``"from the preset"`` where
    another setting decides). Values are shown as ``--name NAME`` (or the
    field's ``metadata["metavar"]``), whatever ``dest_prefix`` is.
    """
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name in skip or not field.init or field.metadata.get("cli") is False:
            continue
        typ, _ = _base_type(hints[field.name])
        help_text = _with_default(help_of(field), field, defaults, default_text)
        dest = dest_prefix + field.name
        metavar = field.metadata.get("metavar", field.name.upper())
        if typ is bool:
            parser.add_argument(_flag(field.name), dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif typ in (int, float, str):
            choices = field.metadata.get("choices")
            parser.add_argument(
                _flag(field.name), dest=dest, type=typ, default=None, choices=choices, help=help_text, metavar=None if choices else metavar
            )
        elif typing.get_origin(typ) is tuple or typ is tuple:
            parser.add_argument(_flag(field.name), dest=dest, type=_float_tuple, default=None, help=help_text, metavar="A,B,...")
        else:
            raise TypeError(f"{cls.__name__}.{field.name}: no CLI mapping for {typ!r}")


def _with_default(help_text: str, field: dataclasses.Field, defaults: Any, default_text: str | None) -> str:
    """The help text followed by the default it applies, if there is one worth showing."""
    if default_text is not None:
        shown = default_text
    elif field.default is dataclasses.MISSING:  # required, or drawn by a factory: the help text says what happens
        return help_text
    else:
        value = field.default if defaults is None else getattr(defaults, field.name)
        if value is None or value == "":
            return help_text
        shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{help_text} (default: {shown})" if help_text else f"default: {shown}"


def _float_tuple(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def given_arguments(args: argparse.Namespace, cls: type, *, dest_prefix: str = "") -> dict[str, Any]:
    """The fields of ``cls`` that were set on the command line."""
    out = {}
    for field in dataclasses.fields(cls):
        value = getattr(args, dest_prefix + field.name, None)
        if value is not None:
            out[field.name] = value
    return out


def apply_arguments(config: C, args: argparse.Namespace, *, dest_prefix: str = "") -> C:
    """A copy of ``config`` with every option the user gave applied."""
    return dataclasses.replace(config, **given_arguments(args, type(config), dest_prefix=dest_prefix))


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-able dict of a (possibly nested) config dataclass."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def from_dict(cls: type[C], data: dict[str, Any], *, source: str = "config") -> C:
    """Build ``cls`` from a dict, refusing unknown keys; nested dataclass
    fields are built recursively and tuples are restored from JSON lists."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{source}: unknown {cls.__name__} setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    kwargs = {}
    for name, value in data.items():
        typ, nullable = _base_type(hints[name])
        if dataclasses.is_dataclass(typ) and isinstance(value, dict):
            value = from_dict(typ, value, source=f"{source}.{name}")
        elif (typ is tuple or typing.get_origin(typ) is tuple) and isinstance(value, list):
            value = tuple(value)
        if not _has_type(value, typ, nullable):
            raise ConfigError(f"{source}: {name}: expected {_type_name(typ)}{' or null' if nullable else ''}, got {shown(value)}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def _has_type(value: Any, typ: Any, nullable: bool) -> bool:
    """Whether a JSON value fits a field's annotation (ints pass for floats;
    annotations other than scalars, tuples and dicts are left to the class)."""
    if value is None:
        return nullable
    if typ is bool:
        return isinstance(value, bool)
    if typ in (int, float, str) and isinstance(value, bool):
        return False
    if typ is float:
        return isinstance(value, (int, float))
    if typ in (int, str):
        return isinstance(value, typ)
    if typ is tuple or typing.get_origin(typ) is tuple:
        return isinstance(value, tuple) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if typ is dict or typing.get_origin(typ) is dict:
        return isinstance(value, dict)
    return True


def _type_name(typ: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if typ is tuple or typing.get_origin(typ) is tuple:
        return "a list of numbers"
    if typ is dict or typing.get_origin(typ) is dict:
        return "a JSON object"
    return names.get(typ, getattr(typ, "__name__", str(typ)))


def read_json(path: str | Path, what: str = "config") -> Any:
    """A JSON file's content, or a ConfigError naming the file and what is wrong."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no {what} here") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: {what} is not valid JSON: {exc}") from exc
