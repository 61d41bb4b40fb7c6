"""Spanning trees of a kinetic scheme's transition graph: counted and enumerated.

A spanning tree *into* state r picks, for every other state, one outgoing
transition, so that following the picks from anywhere leads to r (the King-Altman
diagrams). This module builds the transition graph as a networkx view of the IR,
counts the trees into each state without enumerating them (the matrix-tree
theorem and the Markov chain tree theorem: one exact elimination for all
states) and enumerates them.
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
from .steady_state import classes_of

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
    """The spanning trees into every state, in ``model.states`` order, exact and at once.

    By the Markov chain tree theorem the counts ``c`` are a left null vector of the
    Laplacian (``c @ L = 0``). When one closed class holds every state with a tree,
    one fraction-free elimination gives ``c[r]`` for a state ``r`` of that class (a
    determinant, :func:`count_trees`) and the other counts from the null vector;
    with no such class every count is zero. One elimination in all, so a
    200-state scheme is counted in well under a second.
    """
    classes = classes_of(model)
    counts = dict.fromkeys(model.states, 0)
    if len(classes.closed) != 1:
        return counts
    states = model.states
    root = states.index(classes.closed[0][0])
    matrix = laplacian(model)
    keep = [i for i in range(len(states)) if i != root]
    # M^T y = -L[root, keep]: the transposed reduced Laplacian, with its right-hand side
    rows = [[matrix[i][j] for i in keep] + [-matrix[root][j]] for j in keep]
    det, solution = _bareiss_solve(rows)
    counts[states[root]] = det
    for i, value in zip(keep, solution, strict=True):
        counts[states[i]] = value
    return counts


def total_trees(model: ir.Model) -> int:
    """The number of trees the closed form sums over, all states together."""
    return sum(count_all_trees(model).values())


def _det(matrix: list[list[int]]) -> int:
    """Exact determinant of an integer matrix (fraction-free elimination)."""
    return _bareiss_solve([[*row, 0] for row in matrix])[0]


def _bareiss_solve(rows: list[list[int]]) -> tuple[int, list[int]]:
    """``det(A)`` and ``det(A) * A^-1 b`` for the integer rows ``[A | b]`` (exact).

    Bareiss's fraction-free elimination keeps every entry an integer (each
    division is exact); the back substitution runs in fractions on the triangle
    and the result, being ``adj(A) b``, is whole. A singular ``A`` gives ``(0, [])``.
    """
    a = [list(row) for row in rows]
    n = len(a)
    sign, previous = 1, 1
    for k in range(n):
        pivot = next((r for r in range(k, n) if a[r][k] != 0), None)
        if pivot is None:
            return 0, []
        if pivot != k:
            a[k], a[pivot] = a[pivot], a[k]
            sign = -sign
        top = a[k]
        akk = top[k]
        for i in range(k + 1, n):
            row, aik = a[i], a[i][k]
            if aik == 0:
                if akk != previous:
                    row[k + 1 :] = [x * akk // previous for x in row[k + 1 :]]
            else:
                row[k + 1 :] = [
                    (x * akk - aik * y) // previous
                    for x, y in zip(row[k + 1 :], top[k + 1 :], strict=True)
                ]
            row[k] = 0
        previous = akk
    det = sign * a[n - 1][n - 1] if n else 1
    x: list[Fraction] = [Fraction(0)] * n
    for i in reversed(range(n)):
        total = Fraction(a[i][n]) - sum((a[i][j] * x[j] for j in range(i + 1, n) if a[i][j]), 0)
        x[i] = total / a[i][i]
    whole = [det * v for v in x]
    assert all(v.denominator == 1 for v in whole)
    return det, [int(v) for v in whole]


# ------------------------------------------------------------------ enumeration


def enumerate_trees(model: ir.Model) -> dict[str, tuple[Tree, ...]]:
    """The trees of :func:`trees_into`, enumerated without counting them first."""
    out = out_edges(model)
    return {root: tuple(sorted(_trees_into_root(model.states, out, root))) for root in model.states}


def trees_into_state(model: ir.Model, state: str) -> tuple[Tree, ...]:
    """The trees into one state only, sorted (what ``bpm graph --trees`` draws)."""
    return tuple(sorted(_trees_into_root(model.states, out_edges(model), state)))


def _trees_into_root(
    states: tuple[str, ...], out: dict[str, list[tuple[str, int]]], root: str
) -> Iterator[Tree]:
    """Backtracking: give each non-root state one outgoing edge that still leads to the root.

    States are visited nearest-to-root first (breadth-first on reversed edges). A
    choice is kept only if the state then still reaches the root (following the
    choices made, then any edge of a state not yet visited), so every state left
    can still reach it too and no branch is a dead end: the work grows with the
    number of trees, not with the choices tried. Iterative, so long chains of
    states need no recursion. States that cannot reach the root mean no tree.
    """
    order = _reverse_bfs(states, out, root)
    if len(order) != len(states):
        return
    nonroot = order[1:]
    successor: dict[str, str] = {}
    chosen: list[int] = []

    def reaches_root(start: str) -> bool:
        seen, stack = {start}, [start]
        while stack:
            node = stack.pop()
            if node == root:
                return True
            nexts = (successor[node],) if node in successor else (t for t, _ in out[node])
            for nxt in nexts:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return False

    def acceptable(source: str, target: str) -> bool:
        node = target
        while node != source and node in successor:
            node = successor[node]
        if node == source:
            return False  # closes a cycle
        return node == root or reaches_root(node)

    tried = [0] * len(nonroot)
    depth = 0
    while depth >= 0:
        if depth == len(nonroot):
            yield tuple(sorted(chosen))
            depth -= 1
            continue
        source = nonroot[depth]
        if source in successor:  # back from a deeper level: undo this level's choice
            del successor[source]
            chosen.pop()
        edges = out[source]
        while tried[depth] < len(edges):
            target, index = edges[tried[depth]]
            tried[depth] += 1
            if target == source:
                continue
            successor[source] = target
            if acceptable(source, target):
                chosen.append(index)
                break
            del successor[source]
        else:
            tried[depth] = 0
            depth -= 1
            continue
        depth += 1


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
