"""The ``bpm`` command's parser and dispatch. ``main`` only parses arguments; each
subcommand's ``run_*`` function does the work (and is what tests call).

Exit status: 0 on success, 1 when a model or dataset is in error, 2 on a usage
error. Results go to stdout (or ``-o``); errors, warnings and progress to stderr.
"""

from __future__ import annotations

import argparse
import gc
import sys
import traceback
from collections.abc import Sequence

from bpm.compiler.errors import BpmError, Source

from . import compare_command, compile_commands, fit_commands, simulate_command

EXIT_MODEL_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line: what is wrong, and where help is."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class Version(argparse.Action):
    """``--version``: ``bpm <version>`` on stdout. The version is read from the installed
    distribution only when asked (importlib.metadata takes ~20 ms to import)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from bpm import __version__

        print(f"bpm {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The ``bpm`` parser with every subcommand (check, compile, show, graph, fit,
    predict, report, simulate, compare); each sets ``handler`` to the function that runs it."""
    parser = Parser(
        prog="bpm",
        description="Compile biophysical models of regulatory sequences and fit them to MPRA data.",
    )
    parser.add_argument("--version", action=Version, help="show the version and exit")
    parser.add_argument(
        "--traceback", action="store_true", help="show the Python traceback of an error"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    compile_commands.register(sub)
    fit_commands.register(sub)
    simulate_command.register(sub)
    compare_command.register(sub)
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


def command() -> int:
    """The ``bpm`` executable: :func:`main` on the command line, then an exit without the
    garbage collector walking every object left (``gc.freeze``): after a fit, which loads
    torch, pandas and matplotlib, those passes at interpreter exit took 0.5 s of 0.8."""
    code = main()
    gc.freeze()
    return code
