"""``bpm compare``: fit several models to the same reads and rank them.

``run_compare`` does the work (and is what tests call); the table goes to stdout, the
fit directories and comparison.json to ``-o DIR``.
"""

from __future__ import annotations

import argparse
import sys

from bpm.compiler.errors import BpmError

from .fit_checks import check_model, named

EXIT_OK = 0


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
) -> int:
    """Fit ``models`` to ``data`` on the same split; print the table to stdout and, with
    ``output``, write ``output/comparison.json`` and one fit directory per model."""
    from bpm.runtime.compare import compare, table_text

    for model in models:
        check_model(model, None)
    found = compare(models, data, options, nested=nested, output=output, plots=plots)
    sys.stdout.write(table_text(found))
    if output is not None:
        print(f"wrote {output}/comparison.json and {output}/<model>/ for "
              f"{', '.join(m['model'] for m in found['models'])}", file=sys.stderr)  # fmt: skip
    return EXIT_OK


def compare_from_arguments(args: argparse.Namespace) -> int:
    """``bpm compare``'s parsed flags to :func:`run_compare`."""
    if len(args.paths) < 3:
        raise BpmError("give two or more MODEL.bpm files and then the DATA file")
    *models, data = args.paths
    options = {name: getattr(args, name) for name in ("seed", "steps", "polish", "quiet")
               if getattr(args, name) is not None}  # fmt: skip
    return run_compare(models, data, args.output, options, nested=parse_nested(args.nested),
                       plots=args.plots)  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``compare`` to the ``bpm`` command's subparsers."""
    p = subparsers.add_parser(
        "compare",
        help="fit several models to the same reads and rank them",
        description="Fit every MODEL.bpm to DATA on the same split, in parallel processes; "
        "print a table, best first, with each model's test difference from the best "
        "(paired standard error), likelihood-ratio tests of nested pairs, AIC and BIC.",
    )
    p.add_argument("paths", nargs="+", metavar="MODEL.bpm ... DATA")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="write DIR/comparison.json and DIR/<model name>/ per model")  # fmt: skip
    p.add_argument("--nested", action="append", metavar="SMALL:LARGE",
                   help="declare model SMALL to be model LARGE with parameters fixed "
                   "(detected pairs need no flag)")  # fmt: skip
    p.add_argument("--no-plots", dest="plots", action="store_false", help="no plots/ in the fits")
    p.add_argument("--seed", type=int, help="seed of the split and of every fit (default 0)")
    p.add_argument("--steps", type=int, help="Adam steps of each fit")
    p.add_argument("--polish", type=int, help="L-BFGS iterations of each fit's polish")
    p.add_argument("--quiet", action="store_true", default=None, help="no progress")
    p.set_defaults(handler=compare_from_arguments)
