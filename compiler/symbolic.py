"""Shared symbolic layer: IR expressions to sympy, and the result of a derivation.

Both derivations (:mod:`bpm.compiler.thermodynamic` and :mod:`bpm.compiler.kinetic`)
return a :class:`Derivation`: one unnormalized weight per state, the partition
function, each state's probability and each output, as sympy expressions over
one symbol per declared energy and parameter (energies in kT).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from . import ir


def symbols_for(model: ir.Model) -> dict[str, sympy.Symbol]:
    """One real symbol per energy and parameter; positive where the declaration says so."""
    table: dict[str, sympy.Symbol] = {}
    for energy in model.energies:
        table[energy.name] = sympy.Symbol(energy.name, real=True)
    for param in model.params:
        table[param.name] = sympy.Symbol(param.name, real=True, positive=param.positive or None)
    return table


def to_sympy(
    expr: ir.Expr,
    symbols: dict[str, sympy.Symbol],
    probabilities: dict[str, sympy.Expr] | None = None,
) -> sympy.Expr:
    """Translate an IR expression; ``P(s)`` becomes ``probabilities[s]`` (or a symbol ``P_s``)."""
    match expr:
        case ir.Num(value=value):
            return sympy.Integer(int(value)) if float(value).is_integer() else sympy.Float(value)
        case ir.Ref(name=name):
            return symbols[name]
        case ir.Prob(state=state):
            if probabilities is None:
                return sympy.Symbol(f"P_{state}", nonnegative=True)
            return probabilities[state]
        case ir.Unary(op=op, operand=operand):
            value = to_sympy(operand, symbols, probabilities)
            return -value if op == "-" else value
        case ir.Binary(op=op, left=left, right=right):
            a = to_sympy(left, symbols, probabilities)
            b = to_sympy(right, symbols, probabilities)
            return {
                "+": lambda: a + b,
                "-": lambda: a - b,
                "*": lambda: a * b,
                "/": lambda: a / b,
                "^": lambda: a**b,
            }[op]()
        case ir.Call(func=func, args=args):
            values = [to_sympy(a, symbols, probabilities) for a in args]
            return {"exp": sympy.exp, "log": sympy.log, "sqrt": sympy.sqrt}[func](*values)
    raise TypeError(f"not an IR expression: {expr!r}")


def linear_form_to_sympy(form: ir.LinearForm, symbols: dict[str, sympy.Symbol]) -> sympy.Expr:
    """``constant + sum(coef * symbol)``; ``log:<p>`` keys become ``log(p)``."""
    total: sympy.Expr = _number(form.constant)
    for name, coef in form.terms:
        base = sympy.log(symbols[name[4:]]) if name.startswith("log:") else symbols[name]
        total += _number(coef) * base
    return total


def rate_to_sympy(rate: ir.Rate, symbols: dict[str, sympy.Symbol]) -> sympy.Expr:
    """The rate exactly as written in the model file."""
    return to_sympy(rate.expr, symbols)


def _number(value: float) -> sympy.Expr:
    return sympy.Integer(int(value)) if float(value).is_integer() else sympy.Float(value)


@dataclass(frozen=True)
class Derivation:
    """Closed forms of one model.

    ``weights[s]`` is state s's unnormalized weight (a Boltzmann factor, or a sum
    over spanning trees of rate products), ``Z`` their sum, ``P[s] = weights[s] / Z``,
    and ``outputs[name]`` each output with ``P`` substituted.

    For a kinetic model, ``trees[s]`` holds the King-Altman spanning trees into
    state s (each a sorted tuple of indices into ``model.transitions``) and
    ``tree_counts[s]`` their number, both computed once by
    :func:`bpm.compiler.kinetic.derive`; code generation reads them from here.
    Both are ``None`` for a thermodynamic model.
    """

    model: ir.Model
    symbols: dict[str, sympy.Symbol]
    weights: dict[str, sympy.Expr]
    Z: sympy.Expr
    P: dict[str, sympy.Expr]
    outputs: dict[str, sympy.Expr]
    trees: dict[str, tuple[tuple[int, ...], ...]] | None = None
    tree_counts: dict[str, int] | None = None


# -------------------------------------------------------------------- rendering
#
# Closed forms are printed as they come out of the derivation, never through
# ``sympy.simplify``: that can take minutes on a kinetic model with many spanning
# trees, and its result is not guaranteed stable across sympy versions.


def _sections(deriv: Derivation) -> list[tuple[str, list[tuple[str, sympy.Expr]]]]:
    """Weights, Z, probabilities and outputs, in model order."""
    states = list(deriv.weights)
    return [
        ("weights", [(f"w({s})", deriv.weights[s]) for s in states]),
        ("partition function", [("Z", deriv.Z)]),
        ("probabilities", [(f"P({s})", deriv.P[s]) for s in states]),
        ("outputs", [(name, expr) for name, expr in deriv.outputs.items()]),
    ]


def render_text(deriv: Derivation) -> str:
    """Plain-text closed forms, one ``name = expression`` per line, grouped by kind.

    Deterministic: the same derivation gives the same text (sympy's canonical
    argument order, no simplification).
    """
    lines = [f"# closed forms of {deriv.model.kind} model {deriv.model.name} (energies in kT)"]
    for title, items in _sections(deriv):
        lines.append(f"{title}:")
        lines.extend(f"  {name} = {sympy.sstr(expr, order='none')}" for name, expr in items)
    return "\n".join(lines) + "\n"


def render_latex(deriv: Derivation) -> str:
    """The same closed forms as a LaTeX ``align*`` block."""
    rows = []
    for _title, items in _sections(deriv):
        for name, expr in items:
            if name.startswith("w("):
                head = rf"w_{{\mathrm{{{_latex_name(name[2:-1])}}}}}"
            elif name.startswith("P("):
                head = rf"P(\mathrm{{{_latex_name(name[2:-1])}}})"
            elif name == "Z":
                head = "Z"
            else:
                head = sympy.latex(sympy.Symbol(name))
            rows.append(rf"{head} &= {sympy.latex(expr, order='none')}")
    body = " \\\\\n".join(rows)
    return "\\begin{align*}\n" + body + "\n\\end{align*}\n"


def _latex_name(name: str) -> str:
    return name.replace("_", r"\_")
