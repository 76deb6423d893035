"""The ``midilm`` command line: one console script, one module per subcommand.

Each subcommand module defines ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Modules import only light dependencies at top level and
defer heavy ones (torch, music21, gradio) into ``run``, so ``midilm tokenize``
starts without importing torch.

Output goes through :func:`midilm.cli.pipes.tolerant_stdio`, so a pipe closed
by its reader (``| head``) never ends a command with a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys

from midilm.cli.pipes import SIGPIPE_EXIT, tolerant_stdio
from midilm.errors import MidilmError

COMMANDS: dict[str, str] = {
    "tokenize": "midilm.cli.tokenize",
    "detokenize": "midilm.cli.detokenize",
    "info": "midilm.cli.info",
    "prepare": "midilm.cli.prepare",
    "train": "midilm.cli.train",
    "generate": "midilm.cli.generate",
    "accompany": "midilm.cli.accompany",
    "infill": "midilm.cli.infill",
    "evaluate": "midilm.cli.evaluate",
    "export": "midilm.cli.export",
    "app": "midilm.cli.app",
}
"""Subcommand name -> module; a module that does not exist yet is left out of
the parser, so the CLI works while the package grows."""

EXAMPLES = """examples:
  midilm generate --audio --piano-roll          music from the model that ships with midilm
  midilm app                                    the same in a web page, at http://127.0.0.1:7860
  midilm info song.mid                          what a MIDI file holds and what tokenizing it keeps
  midilm prepare                                the bundled corpus -> a token store
  midilm train --arch hier --preset small       train a model on it

`midilm COMMAND --help` gives each command's options and more examples.
"""


def summary_line(help_text: str) -> str:
    """The first sentence of a command's help, for the list of commands."""
    paragraph = " ".join(help_text.strip().split("\n\n")[0].split())
    return re.split(r"(?<=[.;:])\s", paragraph, maxsplit=1)[0].rstrip(".;:")


def build_parser() -> argparse.ArgumentParser:
    from midilm import __version__

    parser = argparse.ArgumentParser(
        prog="midilm",
        description="Symbolic-music language models: MIDI -> tokens -> model -> MIDI.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"midilm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        cmd = sub.add_parser(
            name, help=summary_line(module.HELP), description=module.HELP, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code
    (:data:`~midilm.cli.pipes.SIGPIPE_EXIT` when standard output lost its reader)."""
    with tolerant_stdio() as streams:
        code = _run(argv)
    return SIGPIPE_EXIT if code == 0 and streams.stdout.reader_gone else code


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except MidilmError as exc:
        print(f"midilm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"midilm {args.command}: interrupted", file=sys.stderr)
        return 130
