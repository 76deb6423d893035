"""Checks of JSON values read from files, so a damaged file is refused by name.

Every JSON file midilm reads back (a store's header and manifest, a
checkpoint's metadata) is checked against a table of its fields before
anything uses it: ``"rows": "abc"`` becomes an error that names the file
and the field, not a ``ValueError`` three calls later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from midilm.errors import MidilmError


@dataclass(frozen=True)
class Check:
    """What a JSON value must be: one of ``types`` (``True`` is no integer),
    passing ``test`` when given; null only when ``nullable``."""

    types: tuple[type, ...]
    expected: str
    test: Callable[[Any], bool] | None = None
    nullable: bool = False

    def passes(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if not isinstance(value, self.types) or (type(value) is bool and bool not in self.types):
            return False
        return self.test is None or self.test(value)


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and not text.strip("0123456789abcdef")


INTEGER = Check((int,), "an integer")
COUNT = Check((int,), "a non-negative integer", lambda v: v >= 0)
POSITIVE = Check((int,), "a positive integer", lambda v: v >= 1)
NUMBER = Check((int, float), "a number")
TEXT = Check((str,), "a string")
FLAG = Check((bool,), "true or false")
OBJECT = Check((dict,), "a JSON object")
LIST = Check((list,), "a list")
SHA256 = Check((str,), "a SHA-256 digest (64 hex digits)", _is_sha256)


def optional(check: Check) -> Check:
    """``check``, or null."""
    return replace(check, expected=f"{check.expected} or null", nullable=True)


def one_of(values: Iterable[Any]) -> Check:
    """One of the given values (strings or integers)."""
    allowed = tuple(values)
    return Check((str, int), "one of " + ", ".join(map(repr, allowed)), lambda v: v in allowed)


def list_of(check: Check) -> Check:
    """A list whose items all pass ``check``."""
    return Check((list,), f"a list of {check.expected}s", lambda v: all(check.passes(item) for item in v))


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
    for name, check in fields.items():
        if name in value and not check.passes(value[name]):
            raise error(f"{where}: field {prefix}{name}: expected {check.expected}, got {shown(value[name])}")
    return value
