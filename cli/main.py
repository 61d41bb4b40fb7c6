"""The ``bpm`` command's parser and dispatch. ``main`` only parses arguments; each
subcommand's ``run_*`` function does the work (and is what tests call).

Exit status: 0 on success, 1 when a model or dataset is in error, 2 on a usage
error. Results go to stdout (or ``-o``); errors, warnings and progress to stderr.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from bpm.compiler import __version__
from bpm.compiler.errors import BpmError, Source

from . import compile_commands, fit_commands, simulate_command

EXIT_MODEL_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line: what is wrong, and where help is."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``bpm`` parser with every subcommand (check, compile, show, graph, fit,
    predict, simulate); each sets ``handler`` to the function that runs it."""
    parser = Parser(
        prog="bpm",
        description="Compile biophysical models of regulatory sequences and fit them to MPRA data.",
    )
    parser.add_argument("--version", action="version", version=f"bpm {__version__}")
    parser.add_argument(
        "--traceback", action="store_true", help="show the Python traceback of an error"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    compile_commands.register(sub)
    fit_commands.register(sub)
    simulate_command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the command line) and run the subcommand it names."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.handler(args)
    except BpmError as error:
        if args.traceback:
            traceback.print_exc()
        if error.source is None:  # name the command, not "<input>"
            error.with_source(Source("", f"bpm {args.command}"))
        print(error.render(), file=sys.stderr)
        return EXIT_MODEL_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
