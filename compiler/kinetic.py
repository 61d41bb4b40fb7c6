"""Kinetic models: the transition graph, its spanning trees, and King-Altman closed forms.

The steady-state occupancy of a state of a kinetic scheme is proportional to the sum,
over the spanning trees of the transition graph directed *into* that state, of the
product of the rates on the tree's edges (King & Altman 1956; Hill 1966; the
matrix-tree theorem). This module builds that graph as a networkx view of the IR,
enumerates the trees, counts them without enumerating (so a caller can choose the
linear-solve fallback before enumeration explodes), and derives the closed forms.

    >>> from bpm.compiler import kinetic
    >>> kinetic.trees_into(model)["open"]          # doctest: +SKIP
    ((0, 2),)

Transitions are numbered by their position in ``Model.transitions``; a tree is a
sorted tuple of those indices.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import networkx as nx
import sympy

from . import ir, symbolic
from .errors import BpmModelError

DEFAULT_TREE_BUDGET = 2000
"""The most spanning trees (summed over all states) the closed form may enumerate."""

Tree = tuple[int, ...]


class TreeBudgetExceeded(BpmModelError):
    """The scheme has more spanning trees than the budget allows; use the linear solve."""

    def __init__(self, count: int, budget: int):
        self.count = count
        self.budget = budget
        super().__init__(
            f"the kinetic scheme has {count} spanning trees, more than the budget of {budget}",
            note="the occupancies are then computed by solving the rate equations numerically",
        )


# ------------------------------------------------------------------ the graph


def transition_graph(model: ir.Model) -> nx.DiGraph:
    """The states as nodes (in ``model.states`` order) and one edge per source/target pair.

    Edge attributes: ``index`` and ``rate`` of the first transition between the pair,
    and ``indices``/``rates`` of all of them (a scheme may have parallel transitions,
    like unbinding and catalysis both leading ``bound -> free``).
    """
    graph = nx.DiGraph(name=model.name)
    graph.add_nodes_from(model.states)
    for index, transition in enumerate(model.transitions):
        u, v = transition.source, transition.target
        if graph.has_edge(u, v):
            data = graph[u][v]
            data["indices"] += (index,)
            data["rates"] += (transition.rate,)
        else:
            graph.add_edge(
                u, v, index=index, rate=transition.rate, indices=(index,), rates=(transition.rate,)
            )
    return graph


def _out_edges(model: ir.Model) -> dict[str, list[tuple[str, int]]]:
    """For each state, its outgoing transitions as ``(target, index)``, in index order."""
    out: dict[str, list[tuple[str, int]]] = {s: [] for s in model.states}
    for index, t in enumerate(model.transitions):
        out[t.source].append((t.target, index))
    return out


# ------------------------------------------------------------------ counting


def laplacian(model: ir.Model) -> list[list[int]]:
    """The out-degree Laplacian ``L = D_out - A`` (rows and columns in ``model.states`` order).

    ``A[u][v]`` counts the transitions ``u -> v``, so parallel transitions count twice.
    """
    position = {s: i for i, s in enumerate(model.states)}
    n = len(model.states)
    matrix = [[0] * n for _ in range(n)]
    for t in model.transitions:
        i, j = position[t.source], position[t.target]
        matrix[i][i] += 1
        matrix[i][j] -= 1
    return matrix


def count_trees(model: ir.Model, state: str) -> int:
    """The number of spanning trees into ``state``, by the matrix-tree theorem (exact).

    Tutte's theorem: the in-arborescences rooted at r number ``det`` of the out-degree
    Laplacian with r's row and column removed.
    """
    k = model.states.index(state)
    matrix = laplacian(model)
    reduced = [[x for j, x in enumerate(row) if j != k] for i, row in enumerate(matrix) if i != k]
    return _det(reduced)


def count_all_trees(model: ir.Model) -> dict[str, int]:
    """``count_trees`` for every state, in ``model.states`` order."""
    return {s: count_trees(model, s) for s in model.states}


def total_trees(model: ir.Model) -> int:
    """The number of trees the closed form sums over, all states together."""
    return sum(count_all_trees(model).values())


def within_budget(model: ir.Model, budget: int | None = DEFAULT_TREE_BUDGET) -> bool:
    """True when the closed form enumerates no more than ``budget`` trees (``None``: no limit)."""
    return budget is None or total_trees(model) <= budget


def _det(matrix: list[list[int]]) -> int:
    """Exact determinant by Gaussian elimination over the rationals (matrices are small)."""
    n = len(matrix)
    if n == 0:
        return 1
    a = [[Fraction(x) for x in row] for row in matrix]
    det = Fraction(1)
    for col in range(n):
        pivot = next((r for r in range(col, n) if a[r][col] != 0), None)
        if pivot is None:
            return 0
        if pivot != col:
            a[col], a[pivot] = a[pivot], a[col]
            det = -det
        det *= a[col][col]
        for r in range(col + 1, n):
            factor = a[r][col] / a[col][col]
            if factor:
                for c in range(col, n):
                    a[r][c] -= factor * a[col][c]
    assert det.denominator == 1
    return int(det)


# ------------------------------------------------------------------ enumeration


def trees_into(
    model: ir.Model, budget: int | None = None
) -> dict[str, tuple[Tree, ...]]:
    """Every spanning tree directed into each state, as sorted tuples of transition indices.

    In a tree into r every other state has exactly one outgoing tree edge and the
    edges lead to r. States come in ``model.states`` order, trees in sorted order.
    With a ``budget``, raise :class:`TreeBudgetExceeded` before enumerating when the
    matrix-tree count is larger.
    """
    if budget is not None:
        total = total_trees(model)
        if total > budget:
            raise TreeBudgetExceeded(total, budget)
    out = _out_edges(model)
    return {root: tuple(sorted(_trees_into_root(model.states, out, root))) for root in model.states}


def _trees_into_root(
    states: tuple[str, ...], out: dict[str, list[tuple[str, int]]], root: str
) -> Iterator[Tree]:
    """Backtracking: give each non-root state one outgoing edge, rejecting any that closes a cycle.

    States are visited nearest-to-root first (breadth-first on reversed edges), so
    choices that cannot reach the root are rejected early. States that cannot reach
    the root at all mean there is no tree.
    """
    order = _reverse_bfs(states, out, root)
    if len(order) != len(states):
        return
    nonroot = order[1:]
    successor: dict[str, str] = {}
    chosen: list[int] = []

    def closes_cycle(source: str, target: str) -> bool:
        node = target
        while node in successor:
            node = successor[node]
        return node == source

    def visit(depth: int) -> Iterator[Tree]:
        if depth == len(nonroot):
            yield tuple(sorted(chosen))
            return
        source = nonroot[depth]
        for target, index in out[source]:
            if target == source or closes_cycle(source, target):
                continue
            successor[source] = target
            chosen.append(index)
            yield from visit(depth + 1)
            chosen.pop()
            del successor[source]

    yield from visit(0)


def _reverse_bfs(
    states: tuple[str, ...], out: dict[str, list[tuple[str, int]]], root: str
) -> list[str]:
    """States that can reach ``root``, in breadth-first order from it along reversed edges."""
    into: dict[str, list[str]] = {s: [] for s in states}
    for source, edges in out.items():
        for target, _ in edges:
            into[target].append(source)
    order, seen = [root], {root}
    for node in order:
        for source in into[node]:
            if source not in seen:
                seen.add(source)
                order.append(source)
    return order


def trees_into_networkx(model: ir.Model) -> dict[str, tuple[Tree, ...]]:
    """The same trees found with networkx's ``ArborescenceIterator`` (slow; for cross-checks).

    The iterator yields out-arborescences with every root, so it runs on the reversed
    graph and the trees are grouped by root. Parallel transitions are expanded.
    """
    from networkx.algorithms.tree.branchings import ArborescenceIterator

    graph = transition_graph(model)
    reversed_graph = graph.reverse(copy=True)
    found: dict[str, set[Tree]] = {s: set() for s in model.states}
    if len(model.states) == 1:
        found[model.states[0]].add(())
    else:
        for arborescence in ArborescenceIterator(reversed_graph):
            root = next(n for n in arborescence if arborescence.in_degree(n) == 0)
            choices = [graph[v][u]["indices"] for u, v in arborescence.edges]
            for combo in itertools.product(*choices):
                found[root].add(tuple(sorted(combo)))
    return {s: tuple(sorted(found[s])) for s in model.states}
