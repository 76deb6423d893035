"""``midilm app``: safe defaults, light to parse, a wrong checkpoint named before serving."""

from __future__ import annotations

import subprocess
import sys

import pytest

from midilm.cli import build_parser, main


def test_the_app_listens_on_this_machine_only_by_default() -> None:
    args = build_parser().parse_args(["app"])
    assert (args.host, args.port, args.share, args.runs, args.checkpoint) == ("127.0.0.1", 7860, False, "runs", None)


def test_parsing_the_command_imports_neither_gradio_nor_torch() -> None:
    code = "import sys; from midilm.cli import build_parser; build_parser().parse_args(['app']); print(sorted({'gradio', 'torch'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_a_wrong_checkpoint_is_named_before_the_server_starts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["app", "--checkpoint", "runs/missing", "--port", "1"]) == 2
    assert "midilm app: error: runs/missing: no such checkpoint" in capsys.readouterr().err
