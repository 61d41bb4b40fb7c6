"""What both drawings of a kinetic scheme share: label text, colours and the grid of trees.

:mod:`bpm.compiler.graph` (DOT text and Graphviz) and :mod:`bpm.compiler.graph_mpl`
(the matplotlib fallback) both import from here, so neither imports the other's
internals.
"""

from __future__ import annotations

import math

from . import ir, kinetic, printing

ROOT_COLOR = "#f4c542"
NODE_COLOR = "#dbe8f6"
EDGE_COLOR = "#33526e"


def expr_text(expr: ir.Expr, parent: int = 0) -> str:
    """An IR expression as a person writes it, ``*`` as a middle dot: ``k_on·exp(-G_R)``."""
    return printing.format_expression(expr, ir.shape_of, printing.PRETTY, parent)


def rate_text(rate: ir.Rate) -> str:
    """The rate as written in the model file, pretty-printed."""
    return expr_text(rate.expr)


def tree_text(model: ir.Model, tree: kinetic.Tree) -> str:
    """A tree's rate product, ``k_on·exp(-G_R) × k_open``."""
    parts = []
    for i in tree:
        text = rate_text(model.transitions[i].rate)
        parts.append(f"({text})" if " " in text else text)
    return " × ".join(parts) if parts else "1"


def grid_columns(count: int) -> int:
    """How many trees a row of the picture holds: about the square root of ``count``.

    >>> grid_columns(10)
    4
    """
    return max(1, math.ceil(math.sqrt(count)))
