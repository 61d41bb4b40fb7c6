"""Kinetic models: King-Altman closed forms, within a budget of spanning trees.

The steady-state occupancy of a state of a kinetic scheme is proportional to the sum,
over the spanning trees of the transition graph directed *into* that state, of the
product of the rates on the tree's edges (King & Altman 1956; Hill 1966; the
matrix-tree theorem). :func:`derive` counts the trees (:mod:`~bpm.compiler.trees`),
and when they fit in the tree budget enumerates them once and builds the closed
forms; above it a caller uses the linear-solve fallback instead.

    >>> from bpm.compiler import kinetic
    >>> kinetic.trees_into(model)["open"]          # doctest: +SKIP
    ((0, 2),)

This module is also the front door to the kinetic toolbox: the tree functions of
:mod:`~bpm.compiler.trees`, the steady-state rule and numerical reference of
:mod:`~bpm.compiler.steady_state`, and :mod:`~bpm.compiler.detailed_balance` are
re-exported here (``kinetic.count_trees``, ``kinetic.detailed_balance``, ...).
"""

from __future__ import annotations

import math

import sympy

from . import ir, symbolic
from .detailed_balance import DetailedBalance, detailed_balance
from .errors import BpmModelError
from .limits import DEFAULT_TREE_BUDGET, tree_limit
from .linear_forms import add_forms
from .steady_state import (
    check_steady_state,
    rate_matrix,
    steady_state_numeric,
    transient_states,
)
from .trees import (
    Tree,
    count_all_trees,
    count_trees,
    enumerate_trees,
    laplacian,
    total_trees,
    transition_graph,
    tree_log_rate,
    trees_into_networkx,
)

__all__ = [
    "DEFAULT_TREE_BUDGET",
    "DetailedBalance",
    "Tree",
    "TreeBudgetExceeded",
    "add_forms",
    "check_steady_state",
    "count_all_trees",
    "count_trees",
    "derive",
    "detailed_balance",
    "enumerate_trees",
    "laplacian",
    "rate_matrix",
    "steady_state_numeric",
    "total_trees",
    "transient_states",
    "transition_graph",
    "tree_limit",
    "tree_log_rate",
    "trees_into",
    "trees_into_networkx",
    "within_budget",
]


class TreeBudgetExceeded(BpmModelError):
    """The scheme has more spanning trees than the budget allows; use the linear solve."""

    def __init__(self, count: int, budget: float, counts: dict[str, int] | None = None):
        self.count = count
        self.budget = budget
        self.counts = counts
        """The trees into each state (what was counted), when known."""
        super().__init__(
            f"the kinetic scheme has {count} spanning trees, more than the budget of {budget}",
            note="the occupancies are then computed by solving the rate equations numerically",
        )


def within_budget(model: ir.Model, budget: float | None = None) -> bool:
    """True when the closed form enumerates no more than ``budget`` trees.

    ``None`` means :data:`DEFAULT_TREE_BUDGET`; ``math.inf`` means no limit.
    """
    return total_trees(model) <= tree_limit(budget)


def trees_into(model: ir.Model, budget: float = math.inf) -> dict[str, tuple[Tree, ...]]:
    """Every spanning tree directed into each state, as sorted tuples of transition indices.

    In a tree into r every other state has exactly one outgoing tree edge and the
    edges lead to r. States come in ``model.states`` order, trees in sorted order.
    With a finite ``budget`` (default: none; ``None`` is :data:`DEFAULT_TREE_BUDGET`),
    raise :class:`TreeBudgetExceeded` before enumerating when the matrix-tree count
    is larger.
    """
    limit = tree_limit(budget)
    if limit != math.inf:
        total = total_trees(model)
        if total > limit:
            raise TreeBudgetExceeded(total, limit)
    return enumerate_trees(model)


def derive(model: ir.Model, budget: float | None = None) -> symbolic.Derivation:
    """King-Altman closed forms: each state's weight is the sum over its trees of rate products.

    The trees are counted once (one matrix-tree determinant per state) and, within
    the budget, enumerated once; both are kept in the derivation's ``tree_counts``
    and ``trees``. The sums of products are kept as built (no ``simplify``: it
    explodes on large schemes). Raises :class:`TreeBudgetExceeded` when the scheme
    has more trees than ``budget`` (``None``: :data:`DEFAULT_TREE_BUDGET`;
    ``math.inf``: no limit), and :class:`BpmModelError` when it has no unique
    steady state.
    """
    if model.kind != "kinetic":
        raise ValueError(f"{model.name} is not a kinetic model")
    check_steady_state(model)
    counts = count_all_trees(model)
    total, limit = sum(counts.values()), tree_limit(budget)
    if total > limit:
        raise TreeBudgetExceeded(total, limit, counts)
    trees = enumerate_trees(model)
    symbols = symbolic.symbols_for(model)
    rates = [symbolic.rate_to_sympy(t.rate, symbols) for t in model.transitions]
    weights = {
        s: sympy.Add(*(sympy.Mul(*(rates[i] for i in tree)) for tree in trees[s]))
        for s in model.states
    }
    Z = sympy.Add(*weights.values())
    P = {s: weights[s] / Z for s in model.states}
    outputs = {o.name: symbolic.to_sympy(o.expr, symbols, P) for o in model.outputs}
    return symbolic.Derivation(
        model, symbols, weights, Z, P, outputs, trees=trees, tree_counts=counts
    )
