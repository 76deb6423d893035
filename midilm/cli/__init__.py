"""The ``midilm`` command line: one console script, one module per subcommand.

Each subcommand module defines ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Modules import only light dependencies at top level and
defer heavy ones (torch, music21, gradio) into ``run``, so ``midilm tokenize``
starts without importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

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
    "app": "midilm.cli.app",
}
"""Subcommand name -> module; a module that does not exist yet is left out of
the parser, so the CLI works while the package grows."""


def build_parser() -> argparse.ArgumentParser:
    from midilm import __version__

    parser = argparse.ArgumentParser(prog="midilm", description="Symbolic-music language models: MIDI -> tokens -> model -> MIDI.")
    parser.add_argument("--version", action="version", version=f"midilm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
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
