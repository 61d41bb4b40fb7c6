"""How deep an expression may nest, and the recursion the compiler's stages may use.

The stages walk expressions recursively (name resolution, sympy, code
generation), so a parsed expression is measured first, without recursion, and
refused with its position when it is deeper than :data:`MAX_EXPRESSION_DEPTH`
levels (a sum of 500 terms is 500 levels deep) or nests powers and function
calls more than :data:`MAX_NESTED_CALLS` deep (each becomes a pair of
parentheses in the generated Python, which allows 200). Within those limits every
stage runs under :func:`deep_recursion`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import lark

from .errors import BpmSyntaxError, Span

MAX_EXPRESSION_DEPTH = 1000
"""Operators one expression may nest (``a + b + ... `` with 1000 terms is 999 deep)."""

MAX_NESTED_CALLS = 50
"""Powers and function calls (``exp``, ``log``, ``sqrt``) one may nest inside another."""

DEFAULT_TREE_BUDGET = 2000
"""The most spanning trees (summed over all states) a kinetic closed form may enumerate
(:mod:`~bpm.compiler.kinetic`)."""

RECURSION_LIMIT = 20 * MAX_EXPRESSION_DEPTH + 1000
"""Python's recursion limit while a stage runs: frames per level, with room to spare."""

_OPERATORS = {"add", "sub", "mul", "div", "neg", "pos", "pow", "call"}
_NESTING = {"pow", "call"}


def check_depth(tree: lark.Tree, text: str) -> None:
    """Raise :class:`BpmSyntaxError` at the first expression nested beyond the limits.

    Iterative (an explicit stack), so it measures what recursion could not.
    """
    stack: list[tuple[lark.Tree, int, int]] = [(tree, 0, 0)]
    while stack:
        node, depth, nesting = stack.pop()
        if node.data in _OPERATORS:
            depth += 1
            if node.data in _NESTING and not _is_probability(node):
                nesting += 1
        if depth > MAX_EXPRESSION_DEPTH or nesting > MAX_NESTED_CALLS:
            what = (
                f"is nested more than {MAX_EXPRESSION_DEPTH} operators deep"
                if depth > MAX_EXPRESSION_DEPTH
                else f"nests powers or function calls more than {MAX_NESTED_CALLS} deep"
            )
            meta = node.meta
            span = Span.at(text, meta.start_pos, meta.end_pos) if not meta.empty else None
            raise BpmSyntaxError(
                f"this expression {what}",
                span,
                note="split it, for example into several outputs or energies",
            )
        stack.extend(
            (child, depth, nesting) for child in node.children if isinstance(child, lark.Tree)
        )


def _is_probability(node: lark.Tree) -> bool:
    head = node.children[0] if node.children else None
    return node.data == "call" and isinstance(head, lark.Token) and str(head) == "P"


@contextlib.contextmanager
def deep_recursion() -> Iterator[None]:
    """Run the enclosed stage with :data:`RECURSION_LIMIT` (never lowering the limit)."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, RECURSION_LIMIT))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def tree_limit(budget: float | None = None) -> float:
    """The budget a caller means: ``None`` is :data:`DEFAULT_TREE_BUDGET`, ``math.inf`` no limit."""
    return DEFAULT_TREE_BUDGET if budget is None else budget
