"""Expression text: one precedence table and one printer for AST and IR expressions alike.

The printer does not know the tree's classes. A *view* turns one node into a
:data:`Shape`: the text of a leaf (a name, a number as written), a number to format,
or a :class:`Call`, :class:`Unary` or :class:`Binary` whose children are nodes again.
A :class:`Notation` says how operators and numbers are written and which
parentheses are kept:

- :data:`SOURCE` writes model text: every grouping of the tree survives, so the text
  parses back to the same tree (``a + (b + c)`` keeps its parentheses);
- :data:`PRETTY` writes labels for pictures: ``*`` as a middle dot, ``/`` and ``^``
  unspaced, a leading ``+`` dropped, and only the parentheses that change the value.

>>> view = lambda node: node  # a toy tree whose nodes are already shapes
>>> tree = Binary("*", "k", Binary("+", "a", 2.0))
>>> format_expression(tree, view), format_expression(tree, view, PRETTY)
('k * (a + 2)', 'k·(a + 2)')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

# How tightly each operator binds; a unary sign sits between * and ^ (-a^2 is -(a^2)).
PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "^": 4}
UNARY = 3
ATOM = 5  # a parent level above every operator: whatever is not a leaf or call is bracketed


class Call(NamedTuple):
    """``func(args...)``: a function call or ``P(state)``."""

    func: str
    args: tuple[Any, ...]


class Unary(NamedTuple):
    """A sign in front of an operand."""

    op: str
    operand: Any


class Binary(NamedTuple):
    """``left op right`` for an operator of :data:`PRECEDENCE`."""

    op: str
    left: Any
    right: Any


Shape = str | float | Call | Unary | Binary
"""What a view returns: leaf text (printed as is), a number (printed by the notation) or a node."""

View = Callable[[Any], Shape]


def source_number(value: float) -> str:
    """A number as model text: ``2`` for whole numbers, else Python's shortest ``repr``."""
    return repr(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


def pretty_number(value: float) -> str:
    """A number for a label: whole numbers in full, others with ``%g``'s six digits."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Notation:
    """How :func:`format_expression` writes operators and numbers, and which brackets it keeps.

    ``symbols`` maps each operator to its text, spaces included. With ``exact`` every
    grouping of the tree is kept (the text parses back to the same tree); without it,
    only those that change the value, and a leading ``+`` is left out.
    """

    symbols: Mapping[str, str]
    number: Callable[[float], str]
    exact: bool


SOURCE = Notation(
    {"+": " + ", "-": " - ", "*": " * ", "/": " / ", "^": "^"}, source_number, exact=True
)
PRETTY = Notation(
    {"+": " + ", "-": " - ", "*": "·", "/": "/", "^": "^"}, pretty_number, exact=False
)


def _operand_levels(op: str, exact: bool) -> tuple[int, int]:
    """The parent levels the left and right operands of ``op`` are printed at."""
    level = PRECEDENCE[op]
    if op == "^":  # right-associative; the base is an atom
        return ATOM, UNARY if exact else ATOM
    if exact or op in "-/":  # left-associative: a right operand at the same level is bracketed
        return level, level + 1
    return level, level  # + and * are associative: a + (b + c) reads as a + b + c


def format_expression(expr: Any, view: View, notation: Notation = SOURCE, parent: int = 0) -> str:
    """The text of ``expr``, whose nodes ``view`` turns into shapes, bracketed as needed
    inside an operator of level ``parent`` (0: at the top).

    >>> format_expression(Unary("-", Binary("^", "a", 2.0)), lambda node: node)
    '-a^2'
    """
    shape = view(expr)
    if isinstance(shape, str):
        return shape
    if isinstance(shape, float | int):
        return notation.number(shape)
    if isinstance(shape, Call):
        args = ", ".join(format_expression(a, view, notation) for a in shape.args)
        return f"{shape.func}({args})"
    if isinstance(shape, Unary):
        sign = shape.op if notation.exact or shape.op == "-" else ""
        text = sign + format_expression(shape.operand, view, notation, UNARY)
        # Exact text writes --x and a / -b; pretty text brackets a sign under a sign or
        # on the right of /: -(-x), a/(-b).
        bracket = parent > UNARY if notation.exact else parent >= UNARY
        return f"({text})" if bracket else text
    if isinstance(shape, Binary):
        left, right = _operand_levels(shape.op, notation.exact)
        text = (
            format_expression(shape.left, view, notation, left)
            + notation.symbols[shape.op]
            + format_expression(shape.right, view, notation, right)
        )
        return f"({text})" if PRECEDENCE[shape.op] < parent else text
    raise TypeError(f"not an expression shape: {shape!r}")


def closed_form_lines(
    weights: Mapping[str, str], partition: str, outputs: Mapping[str, str]
) -> list[str]:
    """The closed forms of ``bpm show`` as text lines: each state's weight, the partition
    function once, each probability as ``w(s)/Z`` and each output as the model writes it
    (in terms of ``P(s)``). Arguments are already text: ``weights`` by state,
    ``partition`` the expression of Z, ``outputs`` by name.

    >>> for line in closed_form_lines({"off": "1", "on": "exp(-G)"}, "1 + exp(-G)",
    ...                               {"t": "k * P(on)"}):
    ...     print(line)
    weights:
      w(off) = 1
      w(on) = exp(-G)
    partition function:
      Z = 1 + exp(-G)
    probabilities:
      P(s) = w(s)/Z for every state s
    outputs:
      t = k * P(on)
    """
    lines = ["weights:"]
    lines += [f"  w({state}) = {text}" for state, text in weights.items()]
    lines += ["partition function:", f"  Z = {partition}"]
    lines += ["probabilities:", "  P(s) = w(s)/Z for every state s"]
    lines += ["outputs:"] + [f"  {name} = {text}" for name, text in outputs.items()]
    return lines
