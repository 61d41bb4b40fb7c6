"""The driver: names the stages and stops after any one of them.

``compile(text, emit=...)`` runs parse -> check -> derive -> codegen as far as
``emit`` asks and returns that stage's text; ``bpm compile --emit`` uses it.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import TYPE_CHECKING

from . import ast, ir
from .check import check
from .errors import BpmError, Source, Warnings
from .limits import deep_recursion
from .parse import parse

if TYPE_CHECKING:
    from . import symbolic

EMIT_TARGETS = ("ast", "ir", "sympy", "latex", "torch")


MAX_SOURCE_BYTES = 10_000_000
"""The largest model file read (models are a few kilobytes)."""


def read_source(path: str | Path) -> Source:
    """A model file's text, named by its path; a missing file is a :class:`BpmError`.

    Only regular files of at most :data:`MAX_SOURCE_BYTES` are read: ``/dev/zero``,
    a pipe or a huge file is refused in one line rather than read without end.
    """
    try:
        status = Path(path).stat()
        if not stat.S_ISREG(status.st_mode):
            raise BpmError(f"cannot read {path}: not a regular file")
        if status.st_size > MAX_SOURCE_BYTES:
            raise BpmError(
                f"cannot read {path}: {status.st_size} bytes, more than a model file's "
                f"limit of {MAX_SOURCE_BYTES}"
            )
        return Source(Path(path).read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as error:
        raise BpmError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None


def to_ast(text: str, name: str = "<string>") -> ast.ModelFile:
    return parse(text, name)


def to_ir_with_warnings(text: str, name: str = "<string>") -> tuple[ir.Model, Warnings]:
    """Parse and check; every error carries the source so it prints with context."""
    source = Source(text, name)
    try:
        tree = parse(text, name)
        with deep_recursion():
            return check(tree, source)
    except BpmError as error:
        raise error.with_source(source) from None


def to_ir(text: str, name: str = "<string>") -> ir.Model:
    """The checked IR of a model text (warnings dropped; see :func:`to_ir_with_warnings`)."""
    return to_ir_with_warnings(text, name)[0]


def derive(model: ir.Model, tree_budget: float | None = None) -> symbolic.Derivation:
    """Closed forms (:class:`~bpm.compiler.symbolic.Derivation`) of a checked model.

    For a kinetic scheme with more spanning trees than ``tree_budget`` (``None``:
    :data:`~bpm.compiler.kinetic.DEFAULT_TREE_BUDGET`; ``math.inf``: no limit),
    raises :class:`~bpm.compiler.kinetic.TreeBudgetExceeded`.
    """
    with deep_recursion():
        if model.kind == "thermodynamic":
            from .thermodynamic import derive as derive_thermo

            return derive_thermo(model)
        from . import kinetic

        return kinetic.derive(model, tree_budget)


def closed_forms(model: ir.Model, tree_budget: float | None = None) -> symbolic.Derivation | None:
    """The derivation code generation wants: ``None`` for a kinetic scheme above the budget.

    Above the budget the module solves for the steady state numerically, and the
    closed form (a sum over every spanning tree) is too large to derive or print.
    A kinetic scheme without a unique steady state raises
    :class:`~bpm.compiler.errors.BpmModelError`. ``tree_budget`` as in :func:`derive`.
    """
    from .kinetic import TreeBudgetExceeded

    try:
        return derive(model, tree_budget)
    except TreeBudgetExceeded:
        return None


def compile(text: str, emit: str = "torch", name: str = "<string>", **options) -> str:  # noqa: A001
    """The text of stage ``emit`` for a model: its AST, IR, closed forms, LaTeX or module."""
    if emit not in EMIT_TARGETS:
        raise ValueError(f"emit must be one of {', '.join(EMIT_TARGETS)}, not {emit!r}")
    if emit == "ast":
        return ir.dump(to_ast(text, name)) + "\n"
    model = to_ir(text, name)
    if emit == "ir":
        return ir.format_model(model) + "\n"
    return emit_from_ir(model, emit, name, **options)


def emit_from_ir(model: ir.Model, emit: str, name: str, tree_budget: float | None = None) -> str:
    """The later stages, from a checked model.

    A kinetic scheme above the tree budget still compiles to a module (which solves
    the steady state numerically), but has no closed form to print.
    """
    if emit == "torch":
        derivation = closed_forms(model, tree_budget)
    else:
        derivation = derive(model, tree_budget)  # above the budget: TreeBudgetExceeded says why
    return emit_from_derivation(model, emit, name, derivation)


def emit_from_derivation(
    model: ir.Model,
    emit: str,
    name: str,
    derivation: symbolic.Derivation | None,
) -> str:
    """Stage ``emit`` (``sympy``, ``latex`` or ``torch``) from a derivation already made.

    ``derivation`` is what :func:`closed_forms` gives; ``None`` (a kinetic scheme
    above the budget) is only possible for ``torch``.
    """
    if emit == "torch":
        from .codegen import generate

        with deep_recursion():
            return generate(model, derivation, name)
    if derivation is None:
        raise ValueError(f"--emit {emit} needs the closed forms of {model.name}")
    from . import symbolic

    if emit == "sympy":
        return symbolic.render_text(derivation)
    return symbolic.render_latex(derivation)
