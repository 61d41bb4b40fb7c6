"""Spanning trees of a kinetic scheme's transition graph: counted and enumerated.

A spanning tree *into* state r picks, for every other state, one outgoing
transition, so that following the picks from anywhere leads to r (the King-Altman
diagrams). This module builds the transition graph as a networkx view of the IR,
counts the trees into each state without enumerating them (the matrix-tree
theorem, one small exact determinant per state) and enumerates them.
:mod:`bpm.compiler.kinetic` decides, from the count, whether to enumerate.

Transitions are numbered by their position in ``Model.transitions``; a tree is a
sorted tuple of those indices.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from fractions import Fraction

import networkx as nx

from . import ir
from .linear_forms import add_forms

Tree = tuple[int, ...]
"""A spanning tree: the sorted indices of its transitions in ``Model.transitions``."""


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


def out_edges(model: ir.Model) -> dict[str, list[tuple[str, int]]]:
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


def enumerate_trees(model: ir.Model) -> dict[str, tuple[Tree, ...]]:
    """The trees of :func:`trees_into`, enumerated without counting them first."""
    out = out_edges(model)
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


def tree_log_rate(model: ir.Model, tree: Tree) -> ir.LinearForm:
    """The logarithm of a tree's rate product, as one linear form (sum of its log-rates)."""
    return add_forms(model.transitions[i].rate.log_rate for i in tree)
