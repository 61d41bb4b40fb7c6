"""IR expressions, linear forms and rates: the arithmetic part of the IR.

A small expression language shared by outputs and rates, with names resolved: a
:class:`Ref` says whether it names a parameter or an energy. :mod:`bpm.compiler.ir`
re-exports every name here, so ``ir.Num`` and ``ir.format_expr`` are the usual spelling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from . import printing
from .errors import Span

# ------------------------------------------------------------------ expressions


@dataclass(frozen=True)
class Num:
    value: float
    span: Span = field(compare=False, kw_only=True)


@dataclass(frozen=True)
class Ref:
    """A reference to a declared parameter or energy."""

    name: str
    kind: Literal["param", "energy"]
    span: Span = field(compare=False, kw_only=True)


@dataclass(frozen=True)
class Prob:
    """``P(state)``: the equilibrium probability or steady-state occupancy of a state."""

    state: str
    span: Span = field(compare=False, kw_only=True)


@dataclass(frozen=True)
class Unary:
    op: Literal["-", "+"]
    operand: Expr
    span: Span = field(compare=False, kw_only=True)


@dataclass(frozen=True)
class Binary:
    op: Literal["+", "-", "*", "/", "^"]
    left: Expr
    right: Expr
    span: Span = field(compare=False, kw_only=True)


@dataclass(frozen=True)
class Call:
    """``exp(e)``, ``log(e)`` or ``sqrt(e)``."""

    func: Literal["exp", "log", "sqrt"]
    args: tuple[Expr, ...]
    span: Span = field(compare=False, kw_only=True)


Expr = Num | Ref | Prob | Unary | Binary | Call


def shape_of(expr: Expr) -> printing.Shape:
    """How :func:`bpm.compiler.printing.format_expression` sees one IR expression node."""
    match expr:
        case Num(value=value):
            return value
        case Ref(name=name):
            return name
        case Prob(state=state):
            return f"P({state})"
        case Call(func=func, args=args):
            return printing.Call(func, args)
        case Unary(op=op, operand=operand):
            return printing.Unary(op, operand)
        case Binary(op=op, left=left, right=right):
            return printing.Binary(op, left, right)
    raise TypeError(f"not an IR expression: {expr!r}")


def format_expr(expr: Expr, parent: int = 0) -> str:
    """An IR expression as model text.

    >>> format_expr(Binary("*", Ref("k", "param", span=None), Prob("a", span=None), span=None))
    'k * P(a)'
    """
    return printing.format_expression(expr, shape_of, printing.SOURCE, parent)


# -------------------------------------------------------------- linear forms


@dataclass(frozen=True)
class LinearForm:
    """``constant + sum(coef * name)``, terms sorted by name, no zero coefficients.

    Used for state energies (integer coefficients of energies, in kT) and for
    log-rates (real coefficients of log-parameters and energies).
    """

    terms: tuple[tuple[str, float], ...] = ()
    constant: float = 0.0

    def __post_init__(self):
        names = [n for n, _ in self.terms]
        if names != sorted(set(names)):
            raise ValueError(f"terms must be sorted and unique: {names}")
        if any(c == 0 for _, c in self.terms):
            raise ValueError("zero coefficients must be dropped")

    @classmethod
    def of(cls, coefficients: dict[str, float], constant: float = 0.0) -> LinearForm:
        return cls(tuple(sorted((n, c) for n, c in coefficients.items() if c != 0)), constant)

    def coefficient(self, name: str) -> float:
        return dict(self.terms).get(name, 0.0)


def format_linear(form: LinearForm) -> str:
    """``G_C + G_R - 2*G_I + 1.5``; ``log:k`` terms print as ``log(k)``."""
    parts = []
    for name, c in form.terms:
        term = f"log({name[4:]})" if name.startswith("log:") else name
        size = abs(c)
        text = term if size == 1 else f"{size:g}*{term}"
        parts.append(("- " if c < 0 else "+ ") + text)
    if form.constant or not parts:
        parts.append(("- " if form.constant < 0 else "+ ") + f"{abs(form.constant):g}")
    out = " ".join(parts)
    return out[2:] if out.startswith("+ ") else "-" + out[2:]


@dataclass(frozen=True)
class Rate:
    """A positive rate written as a monomial: ``coefficient * prod(p ** e) * exp(-sum(c * G))``.

    ``log_rate`` is its logarithm as a linear form over ``log(p)`` for parameters
    (keyed ``log:<name>``) and over energies (keyed by name, so a rate
    ``k_on * exp(-G_R)`` has ``log:k_on`` with 1 and ``G_R`` with -1).
    """

    expr: Expr
    log_rate: LinearForm

    def __post_init__(self):
        if not math.isfinite(self.log_rate.constant):
            raise ValueError("a rate's constant factor must be positive and finite")

    @property
    def params(self) -> tuple[tuple[str, float], ...]:
        return tuple((n[4:], c) for n, c in self.log_rate.terms if n.startswith("log:"))

    @property
    def energies(self) -> tuple[tuple[str, float], ...]:
        return tuple((n, c) for n, c in self.log_rate.terms if not n.startswith("log:"))
