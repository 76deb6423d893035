"""What the command line prints: help a reader can use, and output into a pipe that closed early."""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from midilm.cli import build_parser, main
from midilm.cli.pipes import SIGPIPE_EXIT, TolerantStream
from midilm.config import add_dataclass_arguments

GOLDEN = Path(__file__).parent / "data" / "golden"


def help_of(*command: str) -> str:
    parser = build_parser()
    if command:
        parser = next(a for a in parser._subparsers._actions if isinstance(a, argparse._SubParsersAction)).choices[command[0]]
    return parser.format_help()


def run_into_closed_pipes(args: list[str], *, close_stderr: bool = False) -> subprocess.CompletedProcess:
    """``python -m midilm ARGS`` with standard output (and error) a pipe whose reader is already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "midilm", *args],
            stdout=write_end,
            stderr=write_end if close_stderr else subprocess.PIPE,
            text=True,
            timeout=300,
        )
    finally:
        os.close(write_end)


def test_info_into_a_closed_pipe_exits_as_sigpipe_without_a_traceback() -> None:
    # `midilm info song.mid | head -3` once ended in a BrokenPipeError traceback
    result = run_into_closed_pipes(["info", str(GOLDEN / "bach_bwv1.6.mid")])
    assert result.returncode == SIGPIPE_EXIT
    assert result.stderr == ""


def test_a_command_finishes_its_work_when_its_output_has_no_reader(tmp_path: Path) -> None:
    # like Ctrl-C on `midilm ... | tee log`, which kills tee: progress bars and the summary have nowhere to go
    store = tmp_path / "store"
    sources = [str(GOLDEN / f"{name}.mid") for name in ("bach_bwv1.6", "folk_essen_altdeu10_1")]
    result = run_into_closed_pipes(["prepare", *sources, "--out", str(store), "--workers", "1"], close_stderr=True)
    assert result.returncode == SIGPIPE_EXIT
    from midilm.data import TokenStore

    assert len(TokenStore(store)) == 2


class ClosedPipe(io.StringIO):
    """A standard output whose reader went away after ``lines`` lines."""

    def __init__(self, lines: int) -> None:
        super().__init__()
        self.lines_left = lines

    def write(self, text: str) -> int:
        if self.lines_left <= 0:
            raise BrokenPipeError(32, "Broken pipe")
        self.lines_left -= text.count("\n")
        return super().write(text)


def test_main_keeps_what_the_reader_got_and_drops_the_rest(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    pipe = ClosedPipe(lines=3)
    monkeypatch.setattr(sys, "stdout", pipe)
    assert main(["info", str(GOLDEN / "bach_bwv1.6.mid")]) == SIGPIPE_EXIT
    got = pipe.getvalue()
    assert got.startswith(str(GOLDEN / "bach_bwv1.6.mid")) and "quality:" not in got  # the first lines, not the last
    assert sys.stdout is pipe  # the original stream is back
    assert capsys.readouterr().err == ""


def test_a_tolerant_stream_drops_output_once_its_reader_is_gone() -> None:
    stream = TolerantStream(ClosedPipe(lines=1))
    assert stream.write("one\n") == 4 and not stream.reader_gone
    assert stream.write("two\n") == 4 and stream.reader_gone
    stream.writelines(["three\n"])
    stream.flush()
    assert stream.getvalue() == "one\n"  # everything else reaches the wrapped stream


def test_main_help_lists_commands_in_one_line_each_and_examples_as_lines() -> None:
    text = help_of()
    assert "    generate  Generate music with a model\n" in text
    assert "examples:\n  midilm generate --audio --piano-roll " in text
    assert "\n  midilm app " in text and "\n  midilm info song.mid " in text


@pytest.mark.parametrize("command", ["tokenize", "detokenize", "info", "prepare", "train", "generate", "evaluate", "app"])
def test_option_values_have_plain_names_and_no_empty_defaults(command: str) -> None:
    text = help_of(command)
    assert "(default: )" not in text and "default: None" not in text
    for prefix in ("SAMPLING_", "MODEL_"):
        assert prefix not in text


def test_train_help_does_not_show_one_preset_as_every_preset() -> None:
    text = " ".join(help_of("train").split())
    assert "--d-model D_MODEL width of the residual stream (default: the preset's)" in text
    assert "--context-events CONTEXT_EVENTS context length in events" in text and "(default: 64)" not in text


def test_generate_help_shows_the_limits_it_applies() -> None:
    text = " ".join(help_of("generate").split())
    assert "--seconds S also stop once this many seconds of music follow the prompt; 0: no limit (default: 180)" in text
    assert "--seed N" in text and "(default: a fresh seed each time, printed and written to each sample's .json)" in text


@dataclasses.dataclass
class Shape:
    width: int = dataclasses.field(default=256, metadata={"help": "hidden size"})
    name: str = dataclasses.field(default="", metadata={"help": "a label"})


def test_help_can_say_where_defaults_come_from() -> None:
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, Shape, dest_prefix="model_", default_text="from the preset")
    text = " ".join(parser.format_help().split())
    assert "--width WIDTH hidden size (default: from the preset)" in text and "MODEL_" not in text
    plain = argparse.ArgumentParser()
    add_dataclass_arguments(plain, Shape, defaults=Shape(width=512))
    text = " ".join(plain.format_help().split())
    assert "--width WIDTH hidden size (default: 512)" in text and "--name NAME a label" in text and "(default: )" not in text
