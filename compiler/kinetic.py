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
import numpy as np
import sympy

from . import ir, symbolic
from .errors import BpmModelError

DEFAULT_TREE_BUDGET = 2000
"""The most spanning trees (summed over all states) the closed form may enumerate."""


def tree_limit(budget: float | None = None) -> float:
    """The budget a caller means: ``None`` is :data:`DEFAULT_TREE_BUDGET`, ``math.inf`` no limit."""
    return DEFAULT_TREE_BUDGET if budget is None else budget


Tree = tuple[int, ...]


class TreeBudgetExceeded(BpmModelError):
    """The scheme has more spanning trees than the budget allows; use the linear solve."""

    def __init__(self, count: int, budget: float):
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


def within_budget(model: ir.Model, budget: float | None = None) -> bool:
    """True when the closed form enumerates no more than ``budget`` trees.

    ``None`` means :data:`DEFAULT_TREE_BUDGET`; ``math.inf`` means no limit.
    """
    return total_trees(model) <= tree_limit(budget)


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


def enumerate_trees(model: ir.Model) -> dict[str, tuple[Tree, ...]]:
    """The trees of :func:`trees_into`, enumerated without counting them first."""
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


def tree_log_rate(model: ir.Model, tree: Tree) -> ir.LinearForm:
    """The logarithm of a tree's rate product, as one linear form (sum of its log-rates)."""
    return add_forms(model.transitions[i].rate.log_rate for i in tree)


def add_forms(
    forms: Iterator[ir.LinearForm] | list[ir.LinearForm], sign: float = 1.0
) -> ir.LinearForm:
    """``sign * sum(forms)`` with coefficients that cancel (to 1e-12) dropped."""
    total: dict[str, float] = {}
    constant = 0.0
    for form in forms:
        constant += sign * form.constant
        for name, coef in form.terms:
            total[name] = total.get(name, 0.0) + sign * coef
    return ir.LinearForm.of({n: c for n, c in total.items() if abs(c) > _TOL}, constant)


_TOL = 1e-12


# ------------------------------------------------------------------ closed forms


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
        raise TreeBudgetExceeded(total, limit)
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


def check_steady_state(model: ir.Model) -> None:
    """Raise :class:`BpmModelError` unless the scheme has exactly one closed class of states.

    With two or more (say, two absorbing states) the steady state depends on where
    the system starts, and every state's tree sum is zero.
    """
    graph = transition_graph(model)
    condensed = nx.condensation(graph)
    closed = [n for n in condensed if condensed.out_degree(n) == 0]
    if len(closed) > 1:
        groups = sorted(
            sorted(condensed.nodes[n]["members"], key=model.states.index) for n in closed
        )
        listed = " and ".join("{" + ", ".join(g) + "}" for g in groups)
        raise BpmModelError(
            f"kinetic model {model.name} has no unique steady state: "
            f"once in {listed} it never leaves",
            model.span,
            note="add transitions so that every state can reach every other one",
        )


def transient_states(model: ir.Model) -> tuple[str, ...]:
    """States the system leaves for good (their steady-state occupancy is zero)."""
    counts = count_all_trees(model)
    return tuple(s for s in model.states if counts[s] == 0)


# ------------------------------------------------------------------ detailed balance


@dataclass(frozen=True)
class DetailedBalance:
    """The result of checking Kolmogorov's criterion for every parameter value.

    ``holds`` when every transition has a reverse and around every cycle of a cycle
    basis the product of forward rates equals the product of reverse rates. Then
    ``energies[s]`` is state s's free energy in kT relative to ``reference``, as a
    linear form over energies and ``log:<param>``: the kinetic model has the same
    steady state as a thermodynamic model with these energies.
    """

    holds: bool
    reason: str
    reference: str | None = None
    energies: dict[str, ir.LinearForm] | None = None
    cycles: tuple[tuple[str, ...], ...] = ()
    violations: tuple[tuple[tuple[str, ...], ir.LinearForm], ...] = ()

    def describe(self) -> str:
        """A sentence or a few lines for a person."""
        if not self.holds:
            return f"detailed balance does not hold: {self.reason}"
        assert self.energies is not None
        lines = [
            "detailed balance holds: this kinetic model is equivalent to a thermodynamic "
            f"one with energies (kT, relative to {self.reference}):"
        ]
        lines += [f"    {s} : {ir.format_linear(g)}" for s, g in self.energies.items()]
        return "\n".join(lines)

    def boltzmann_weights(self, symbols: dict[str, sympy.Symbol]) -> dict[str, sympy.Expr]:
        """``exp(-G_s)`` for each state, as sympy expressions."""
        assert self.energies is not None
        return {
            s: sympy.exp(-symbolic.linear_form_to_sympy(g, symbols))
            for s, g in self.energies.items()
        }


def detailed_balance(model: ir.Model) -> DetailedBalance:
    """Check detailed balance symbolically (for all parameter values) and derive the energies.

    Each transition needs exactly one reverse; around each cycle of the undirected
    graph's cycle basis, ``sum(forward log-rates) - sum(reverse log-rates)`` must be
    zero as a linear form.
    """
    pairs: dict[tuple[str, str], list[int]] = {}
    for i, t in enumerate(model.transitions):
        pairs.setdefault((t.source, t.target), []).append(i)
    for (u, v), indices in pairs.items():
        if (v, u) not in pairs:
            return DetailedBalance(False, f"transition {u} -> {v} has no reverse {v} -> {u}")
        if len(indices) > 1:
            return DetailedBalance(
                False,
                f"{len(indices)} parallel transitions {u} -> {v}: "
                "each elementary transition needs its own reverse",
            )

    def log_k(u: str, v: str) -> ir.LinearForm:
        return model.transitions[pairs[(u, v)][0]].rate.log_rate

    undirected = nx.Graph()
    undirected.add_nodes_from(model.states)
    undirected.add_edges_from(sorted(pairs, key=lambda e: pairs[e][0]))
    cycles = tuple(tuple(c) for c in nx.cycle_basis(undirected, model.states[0]))
    violations = []
    for cycle in cycles:
        steps = list(zip(cycle, cycle[1:] + cycle[:1], strict=True))
        forward = [log_k(u, v) for u, v in steps]
        reverse = [_negate(log_k(v, u)) for u, v in steps]
        difference = add_forms(forward + reverse)
        if difference.terms or abs(difference.constant) > 1e-9:
            violations.append((cycle, difference))
    if violations:
        cycle, difference = violations[0]
        return DetailedBalance(
            False,
            "around the cycle "
            + " -> ".join((*cycle, cycle[0]))
            + f" the log of forward over reverse rates is {ir.format_linear(difference)}, not 0",
            cycles=cycles,
            violations=tuple(violations),
        )
    reference = model.states[0]
    energies = {reference: ir.LinearForm()}
    for u, v in nx.bfs_edges(undirected, reference):
        # P_v / P_u = k_uv / k_vu, so G_v = G_u - log k_uv + log k_vu.
        energies[v] = add_forms([energies[u], _negate(log_k(u, v)), log_k(v, u)])
    ordered = {s: energies[s] for s in model.states if s in energies}
    return DetailedBalance(True, "every cycle balances", reference, ordered, cycles)


def _negate(form: ir.LinearForm) -> ir.LinearForm:
    return add_forms([form], sign=-1.0)


# ------------------------------------------------------------------ numerical reference


def rate_matrix(model: ir.Model, values: dict[str, float]) -> np.ndarray:
    """``Q[i, j]`` = total rate from state i to state j (i != j), diagonal ``-sum`` of the row.

    ``values`` gives every parameter and energy appearing in a rate (natural units,
    energies in kT; fixed parameters default to their values); rates are evaluated
    from their log-rate linear forms.
    """
    values = {p.name: p.value for p in model.params if p.value is not None} | dict(values)
    n = len(model.states)
    position = {s: i for i, s in enumerate(model.states)}
    q = np.zeros((n, n))
    for t in model.transitions:
        form = t.rate.log_rate
        log_rate = form.constant + sum(
            c * (math.log(values[k[4:]]) if k.startswith("log:") else values[k])
            for k, c in form.terms
        )
        q[position[t.source], position[t.target]] += math.exp(log_rate)
    np.fill_diagonal(q, 0.0)
    np.fill_diagonal(q, -q.sum(axis=1))
    return q


def steady_state_numeric(rate_matrix: np.ndarray) -> np.ndarray:
    """The stationary distribution ``p`` (``p @ Q = 0``, ``sum(p) = 1``) by SVD.

    ``rate_matrix[i, j]`` is the rate from i to j; the diagonal is ignored and
    recomputed. Only for tests and references: assumes a unique steady state.
    """
    q = np.array(rate_matrix, dtype=float)
    np.fill_diagonal(q, 0.0)
    np.fill_diagonal(q, -q.sum(axis=1))
    _, _, vt = np.linalg.svd(q.T)
    p = np.abs(vt[-1])
    return p / p.sum()
