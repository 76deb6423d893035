"""Checks of JSON values read from files, so a damaged file is refused by name.

Every JSON file midilm reads back (a store's header and manifest, a
checkpoint's metadata) is checked against a table of its fields before
anything uses it: ``"rows": "abc"`` becomes an error that names the file
and the field, not a ``ValueError`` three calls later.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from midilm.errors import MidilmError

Check = tuple[Callable[[Any], bool], str]
"""A predicate on a JSON value and what it expects, in words."""

_SHA256 = re.compile(r"[0-9a-f]{64}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


INTEGER: Check = (_is_int, "an integer")
COUNT: Check = (lambda v: _is_int(v) and v >= 0, "a non-negative integer")
POSITIVE: Check = (lambda v: _is_int(v) and v >= 1, "a positive integer")
NUMBER: Check = (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number")
TEXT: Check = (lambda v: isinstance(v, str), "a string")
FLAG: Check = (lambda v: isinstance(v, bool), "true or false")
OBJECT: Check = (lambda v: isinstance(v, dict), "a JSON object")
LIST: Check = (lambda v: isinstance(v, list), "a list")
SHA256: Check = (lambda v: isinstance(v, str) and _SHA256.fullmatch(v) is not None, "a SHA-256 digest (64 hex digits)")


def optional(check: Check) -> Check:
    """``check``, or null."""
    test, expected = check
    return (lambda v: v is None or test(v), f"{expected} or null")


def one_of(values: Iterable[Any]) -> Check:
    """One of the given values."""
    allowed = tuple(values)
    return (lambda v: isinstance(v, (str, int)) and v in allowed, "one of " + ", ".join(map(repr, allowed)))


def list_of(check: Check) -> Check:
    """A list whose items all pass ``check``."""
    test, expected = check
    return (lambda v: isinstance(v, list) and all(test(item) for item in v), f"a list of {expected}s")


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_object(
    value: Any,
    fields: Mapping[str, Check],
    *,
    where: str,
    error: type[MidilmError],
    required: Iterable[str] = (),
    prefix: str = "",
) -> dict[str, Any]:
    """``value`` if it is a JSON object holding the ``required`` fields and every
    field of ``fields`` it holds passes its check; else ``error`` naming
    ``where`` (the file, and the line or part) and the field."""
    if not isinstance(value, dict):
        raise error(f"{where}: {prefix.rstrip('.') or 'content'}: expected a JSON object, got {type(value).__name__} {shown(value)}")
    missing = [name for name in required if name not in value]
    if missing:
        raise error(f"{where}: lacks field(s) {', '.join(prefix + name for name in missing)}")
    for name, (test, expected) in fields.items():
        if name in value and not test(value[name]):
            raise error(f"{where}: field {prefix}{name}: expected {expected}, got {shown(value[name])}")
    return value
