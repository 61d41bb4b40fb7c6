"""``bpm check``, ``bpm compile``, ``bpm show`` and ``bpm graph``: the compiler's commands.

``register(subparsers)`` adds them to the ``bpm`` parser; each ``run_*`` does the work,
is what tests call, and raises ``BpmError`` on a model error (``bpm check`` reports
every file's errors and returns 1 itself).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bpm.compiler.errors import BpmError, Source
from bpm.compiler.pipeline import (
    EMIT_TARGETS,
    emit_from_derivation,
    read_source,
    to_ast,
    to_ir_with_warnings,
)

EXIT_OK, EXIT_MODEL_ERROR = 0, 1


def print_warnings(warnings, source: Source) -> None:
    """Each warning, rendered with its source line, on stderr."""
    for w in warnings.items:
        print(w.render(source), file=sys.stderr)


def read_named(path: str) -> Source:
    """The model file's text; "cannot read ..." is named by the path, not ``<input>``."""
    try:
        return read_source(path)
    except BpmError as error:
        raise error.with_source(Source("", str(path))) from None


def load_checked(path: str):
    """A checked model from a file, with its warnings printed."""
    source = read_named(path)
    model, warnings = to_ir_with_warnings(source.text, source.name)
    print_warnings(warnings, source)
    return model, source


def write_text(text: str, output: str | None) -> None:
    """``text`` to stdout, or to the file ``output`` (saying so on stderr)."""
    if output is None or output == "-":
        sys.stdout.write(text)
        return
    try:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")
    except OSError as error:
        raise BpmError(f"cannot write {output}: {error.strerror or error}") from None
    print(f"wrote {output}", file=sys.stderr)


def run_check(files: Sequence[str]) -> int:
    """Check every file; report each file's errors; 1 if any file failed."""
    status = EXIT_OK
    for path in files:
        try:
            model, _ = load_checked(path)
        except BpmError as error:
            print(error.render(), file=sys.stderr)
            status = EXIT_MODEL_ERROR
            continue
        except Exception as error:  # a bug in bpm: say so, and go on to the next file
            print(f"{path}: internal error: {type(error).__name__}: {error}", file=sys.stderr)
            status = EXIT_MODEL_ERROR
            continue
        print(f"{path}: ok ({model.kind}, {len(model.states)} states)")
    return status


def run_compile(path: str, emit: str, output: str | None, tree_budget: float | None) -> int:
    """Compile ``path`` and write the ``emit`` stage (ast, ir, sympy, torch, ...)."""
    source = read_named(path)
    if emit == "ast":
        from bpm.compiler.ir import dump

        write_text(dump(to_ast(source.text, source.name)) + "\n", output)
        return EXIT_OK
    model, _ = load_checked(path)
    if emit == "ir":
        from bpm.compiler.ir import format_model

        write_text(format_model(model) + "\n", output)
        return EXIT_OK
    try:
        derivation, _ = closed_forms_with_notes(model, tree_budget, required=emit != "torch")
        text = emit_from_derivation(model, emit, source.name, derivation)
    except BpmError as error:
        raise error.with_source(source) from None
    write_text(text, output)
    return EXIT_OK


def closed_forms_with_notes(model, tree_budget: float | None, required: bool):
    """The derivation and the trees into each state, with notes for a person.

    Says so when a kinetic scheme obeys detailed balance, and when it is too large
    for the closed form: then the derivation is ``None`` (or, when ``required``,
    :class:`~bpm.compiler.kinetic.TreeBudgetExceeded` is raised). The trees are
    counted once, here. A thermodynamic model does not load the kinetic stage (nor networkx).
    """
    from bpm.compiler.pipeline import derive

    if model.kind != "kinetic":
        derivation = derive(model, tree_budget)
        return derivation, derivation.tree_counts
    from bpm.compiler.kinetic import TreeBudgetExceeded, detailed_balance

    balance = detailed_balance(model)
    if balance.holds:
        print(f"note: {model.name}: {balance.describe()}", file=sys.stderr)
    try:
        derivation = derive(model, tree_budget)
    except TreeBudgetExceeded as over:
        print(
            f"note: {model.name} has {over.count} spanning trees, more than the tree budget; "
            "the module solves the steady state numerically (raise it with --tree-budget)",
            file=sys.stderr,
        )
        if required:
            raise
        return None, over.counts
    return derivation, derivation.tree_counts


def run_show(path: str, tree_budget: float | None) -> int:
    """A summary of the model: states, parameters, the closed form."""
    from bpm.compiler.show import describe

    model, _ = load_checked(path)
    derivation, counts = closed_forms_with_notes(model, tree_budget, required=False)
    write_text(describe(model, derivation, tree_counts=counts), None)
    return EXIT_OK


def run_graph(path: str, output: str, trees: str | None) -> int:
    """Draw a kinetic scheme (or every spanning tree into the state ``trees``), or a
    thermodynamic model's state diagram."""
    from bpm.compiler.graph import draw

    model, _ = load_checked(path)
    if model.kind != "kinetic" and trees is not None:
        raise BpmError(f"{path}: --trees needs a kinetic scheme; {model.name} is thermodynamic "
                       "(bpm graph without --trees draws its state diagram)")  # fmt: skip
    if trees is not None and trees not in model.states:
        from bpm.compiler.errors import did_you_mean

        raise BpmError(f"unknown state '{trees}'{did_you_mean(trees, model.states)}")
    try:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BpmError(f"cannot write {output}: {error.strerror or error}") from None
    draw(model, output, trees)
    print(f"wrote {output}", file=sys.stderr)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``check``, ``compile``, ``show`` and ``graph`` to the ``bpm`` command's subparsers."""
    p = sub.add_parser("check", help="check model files and report every error")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(handler=lambda a: run_check(a.files))

    p = sub.add_parser("compile", help="compile a model; print any stage with --emit")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--emit", choices=EMIT_TARGETS, default="torch", help="stage to print")
    p.add_argument("-o", "--output", help="write here instead of stdout")
    budget_help = "kinetic models: most spanning trees before solving the steady state numerically"
    p.add_argument("--tree-budget", type=int, default=None, help=budget_help)
    p.set_defaults(handler=lambda a: run_compile(a.file, a.emit, a.output, a.tree_budget))

    p = sub.add_parser("show", help="summarize a model: states, parameters, closed form")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--tree-budget", type=int, default=None, help=budget_help)
    p.set_defaults(handler=lambda a: run_show(a.file, a.tree_budget))

    p = sub.add_parser(
        "graph",
        help="draw a kinetic scheme (or its spanning trees) or a thermodynamic model's states",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("-o", "--output", required=True, help="an .svg, .png or .dot file")
    p.add_argument("--trees", metavar="STATE", help="draw every spanning tree into STATE")
    p.set_defaults(handler=lambda a: run_graph(a.file, a.output, a.trees))
