"""``midilm app``: safe defaults, light to parse, a wrong checkpoint named before serving."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

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


def test_a_port_in_use_is_an_error_not_a_traceback(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["app", "--checkpoint", str(tiny_run), "--out", str(tmp_path), "--port", str(port), "--device", "cpu"]) == 2
    assert f"midilm app: error: cannot listen on 127.0.0.1:{port}: the port is in use" in capsys.readouterr().err
