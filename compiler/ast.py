"""The abstract syntax tree: one frozen dataclass per grammar rule.

Nodes mirror the text as written (names unresolved, ``<->`` not yet split), and
every node carries its :class:`~bpm.compiler.errors.Span`. Spans never take part
in equality, so ``parse(unparse(tree)) == tree`` holds for any tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import printing
from .errors import Span


def _span() -> Span:
    return field(compare=False, repr=False, kw_only=True)  # type: ignore[return-value]


# ------------------------------------------------------------------ expressions


@dataclass(frozen=True)
class Number:
    value: float
    text: str
    span: Span = _span()


@dataclass(frozen=True)
class Name:
    name: str
    span: Span = _span()


@dataclass(frozen=True)
class UnaryOp:
    op: str  # "-" or "+"
    operand: Expression
    span: Span = _span()


@dataclass(frozen=True)
class BinaryOp:
    op: str  # "+", "-", "*", "/", "^"
    left: Expression
    right: Expression
    span: Span = _span()


@dataclass(frozen=True)
class Call:
    """``f(a, ...)``: a function (``exp``, ``log``, ``sqrt``) or ``P(state)``."""

    func: Name
    args: tuple[Expression, ...]
    span: Span = _span()


Expression = Number | Name | UnaryOp | BinaryOp | Call


def shape_of(expr: Expression) -> printing.Shape:
    """How :func:`bpm.compiler.printing.format_expression` sees one AST expression node.

    Numbers print as written, so the text parses back to the same tree.
    """
    match expr:
        case Number(text=text):
            return text
        case Name(name=name):
            return name
        case Call(func=func, args=args):
            return printing.Call(func.name, args)
        case UnaryOp(op=op, operand=operand):
            return printing.Unary(op, operand)
        case BinaryOp(op=op, left=left, right=right):
            return printing.Binary(op, left, right)
    raise TypeError(f"not an expression: {expr!r}")


# ------------------------------------------------------------------ statements


@dataclass(frozen=True)
class Quantity:
    """A number with an optional energy unit (``kT``, ``kcal/mol``)."""

    value: float
    unit: str | None
    span: Span = _span()


@dataclass(frozen=True)
class Numbering:
    """``positions -75 to -1 relative to TSS``: the numbers a person gives the first and
    last letters (no 0: ..., -1, +1, ...) and what they count from, if said."""

    first: int
    last: int
    reference: str | None
    span: Span = _span()
    first_span: Span = _span()
    last_span: Span = _span()


@dataclass(frozen=True)
class SequenceDecl:
    name: Name
    alphabet: str  # a named alphabet ("dna") or the letters of a custom one
    custom: bool
    length: int
    #: absent from dumps when None, so files without it keep their dumps and hashes
    numbering: Numbering | None = field(default=None, metadata={"dump": "unless None"})
    span: Span = _span()


@dataclass(frozen=True)
class TemperatureDecl:
    value: float
    unit: str  # "C" or "K"
    span: Span = _span()


@dataclass(frozen=True)
class Site:
    """``matrix(x[1:27])`` or ``pairwise(revcomp(x[1:27]))``."""

    kind: Name
    sequence: Name
    start: int
    stop: int
    revcomp: bool
    span: Span = _span()


@dataclass(frozen=True)
class EnergyDecl:
    """``energy NAME``, optionally ``= site``, ``= value`` (fixed) or ``init value``."""

    name: Name
    site: Site | None = None
    fixed: Quantity | None = None
    init: Quantity | None = None
    span: Span = _span()


@dataclass(frozen=True)
class Bound:
    op: str  # ">" or "<"
    value: float
    span: Span = _span()


@dataclass(frozen=True)
class ParamDecl:
    name: Name
    bound: Bound | None = None
    fixed: float | None = None
    init: float | None = None
    span: Span = _span()


@dataclass(frozen=True)
class StateDecl:
    name: Name
    energy: Expression
    span: Span = _span()


@dataclass(frozen=True)
class ThermoBlock:
    states: tuple[StateDecl, ...]
    span: Span = _span()


@dataclass(frozen=True)
class TransitionDecl:
    """``a -> b : rate`` or, with ``reverse``, ``a <-> b : rate, reverse``."""

    source: Name
    target: Name
    rate: Expression
    reverse: Expression | None = None
    span: Span = _span()


@dataclass(frozen=True)
class KineticBlock:
    transitions: tuple[TransitionDecl, ...]
    span: Span = _span()


@dataclass(frozen=True)
class OutputDecl:
    name: Name
    expr: Expression
    span: Span = _span()


Statement = (
    SequenceDecl
    | TemperatureDecl
    | EnergyDecl
    | ParamDecl
    | ThermoBlock
    | KineticBlock
    | OutputDecl
)


@dataclass(frozen=True)
class ModelFile:
    name: Name
    doc: str | None
    statements: tuple[Statement, ...]
    span: Span = _span()
