"""``bpm compare``: fit several models to the same reads and rank them.

It takes ``bpm fit``'s flags, defined once: the fit options
(:func:`bpm.runtime.option_flags.add_arguments`, checked by
:func:`~bpm.cli.fit_checks.options_from_arguments`) and what each fit directory holds
(:func:`~bpm.cli.fit_commands.add_report_arguments`); only the models, ``-o`` and
``--nested`` are its own. ``run_compare`` does the work (and is what tests call); the
table goes to stdout, the fit directories and comparison.json to ``-o DIR``.
"""

from __future__ import annotations

import argparse
import sys

from bpm.compiler.errors import BpmError

from .fit_checks import check_model, named, options_from_arguments
from .fit_commands import add_report_arguments, report_from_arguments

EXIT_OK = 0
#: bpm fit's flags that bpm compare has not: it scores every model on the same test reads
#: in memory, so no streamed or distributed fits (:func:`bpm.runtime.compare.compare`).
IN_MEMORY_ONLY = ("--stream", "--distributed", "--cache-dir")


def parse_nested(pairs: list[str] | None) -> list[tuple[str, str]]:
    """``--nested SMALL:LARGE`` values as ``(small, large)`` pairs of model names.

    >>> parse_nested(["lac_no_interaction:lac"])
    [('lac_no_interaction', 'lac')]
    """
    found = []
    for pair in pairs or []:
        small, sep, large = pair.partition(":")
        if not sep or not small.strip() or not large.strip():
            raise named(BpmError(f"give SMALL:LARGE (two model names), not {pair!r}"), "--nested")
        found.append((small.strip(), large.strip()))
    return found


def run_compare(
    models: list[str],
    data: str,
    output: str | None,
    options=None,
    *,
    nested=(),
    plots: bool = True,
    **report,
) -> int:
    """Fit ``models`` to ``data`` on the same split with ``options`` (a
    :class:`~bpm.runtime.options.FitOptions`, a dict or None); print the table to stdout
    and, with ``output``, write ``output/comparison.json`` and one fit directory per model
    (``report``: ``uncertainty``, ``gauge``, ``wild_type``, ``figure_formats``, as
    :func:`~bpm.cli.fit_commands.run_fit` takes them)."""
    from bpm.runtime.compare import compare, table_text
    from bpm.runtime.options import FitOptions

    options = FitOptions.build(options)
    for model in models:
        check_model(model, options.output)
    found = compare(models, data, options, nested=nested, output=output, plots=plots, **report)
    sys.stdout.write(table_text(found))
    if output is not None and not options.quiet:
        print(f"wrote {output}/comparison.json and {output}/<model>/ for "
              f"{', '.join(m['model'] for m in found['models'])}", file=sys.stderr)  # fmt: skip
    return EXIT_OK


def compare_from_arguments(args: argparse.Namespace) -> int:
    """``bpm compare``'s parsed flags to :func:`run_compare`."""
    if len(args.paths) < 3:
        raise BpmError("give two or more MODEL.bpm files and then the DATA file")
    *models, data = args.paths
    checked = [check_model(model, args.output) for model in models]
    report = report_from_arguments(args)
    options = options_from_arguments(args, checked)
    return run_compare(models, data, args.report, options, nested=parse_nested(args.nested),
                       **report)  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``compare`` to the ``bpm`` command's subparsers."""
    from bpm.runtime.option_flags import add_arguments

    p = subparsers.add_parser(
        "compare",
        help="fit several models to the same reads and rank them",
        description="Fit every MODEL.bpm to DATA on the same split, in parallel processes; "
        "print a table, best first, with each model's test difference from the best "
        "(paired standard error), likelihood-ratio tests of nested pairs, AIC and BIC. "
        "Every fit takes the options of bpm fit; --init and --fix apply to each model that "
        "has the name, --seed also draws the split (when DATA has none).",
    )
    p.add_argument("paths", nargs="+", metavar="MODEL.bpm ... DATA")
    p.add_argument("-o", "--output", dest="report", metavar="DIR",
                   help="write DIR/comparison.json and DIR/<model name>/ per model")  # fmt: skip
    p.add_argument("--nested", action="append", metavar="SMALL:LARGE",
                   help="declare model SMALL to be model LARGE with parameters fixed "
                   "(detected pairs need no flag)")  # fmt: skip
    add_report_arguments(p)
    add_arguments(p, leave_out=IN_MEMORY_ONLY)
    p.set_defaults(handler=compare_from_arguments)
