"""The command line starts light: building every subcommand's parser imports no torch."""

from __future__ import annotations

import subprocess
import sys

from midilm.cli import COMMANDS


def test_parser_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from midilm.cli import build_parser\n"
        "parser = build_parser()\n"
        "heavy = [m for m in ('torch', 'music21', 'gradio', 'matplotlib') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_every_subcommand_is_offered() -> None:
    result = subprocess.run([sys.executable, "-m", "midilm", "--help"], capture_output=True, text=True, check=True)
    for name in COMMANDS:
        assert name in result.stdout
