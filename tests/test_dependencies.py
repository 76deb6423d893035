"""The dependencies pyproject.toml declares are the ones the code imports, no more and no fewer."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IMPORT_NAMES = {"pytest-timeout": None, "ruff": None}
"""Distributions imported under another name, or never imported (a pytest plugin, a command-line tool)."""
INDIRECT = {"tensorboard": "torch.utils.tensorboard"}
"""Distributions that the code reaches through another package's module."""


def declared() -> tuple[set[str], set[str]]:
    """(core dependencies, optional ones) by distribution name."""
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11 reads pyproject.toml")

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip() for requirement in requirements}

    return names(project["dependencies"]), set().union(*(names(extra) for extra in project["optional-dependencies"].values()))


def imported(folder: Path) -> set[str]:
    """Top-level modules imported anywhere under ``folder``, and dotted ones as written."""
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names} | {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {node.module, node.module.split(".")[0]}
    return found


def import_name(distribution: str) -> str | None:
    return IMPORT_NAMES.get(distribution, distribution.replace("-", "_"))


def test_every_core_dependency_is_imported_by_the_package() -> None:
    core, _ = declared()
    used = imported(ROOT / "midilm")
    unused = sorted(name for name in core if import_name(name) not in used)
    assert not unused, f"declared in pyproject.toml but never imported by midilm: {unused}"


def test_every_optional_dependency_is_used() -> None:
    _, optional = declared()
    used = imported(ROOT / "midilm") | imported(ROOT / "tests") | imported(ROOT / "bench")
    unused = sorted(name for name in optional if import_name(name) is not None and INDIRECT.get(name, import_name(name)) not in used)
    assert not unused, f"optional dependencies nothing imports: {unused}"


def test_every_third_party_import_is_declared() -> None:
    core, optional = declared()
    provided = {import_name(name) for name in core | optional} | {"midilm"}
    local = {path.stem for path in (ROOT / "tests").rglob("*.py")} | {path.stem for path in (ROOT / "bench").rglob("*.py")}
    third_party = {
        name
        for folder in ("midilm", "tests", "bench")
        for name in imported(ROOT / folder)
        if "." not in name and name not in sys.stdlib_module_names and name not in local and name != "__future__"
    }
    assert not third_party - provided, f"imported but not declared in pyproject.toml: {sorted(third_party - provided)}"
