"""Detailed balance of a kinetic scheme (Kolmogorov's criterion), checked symbolically.

When every transition has a reverse and the rates balance around every cycle for
all parameter values, the kinetic model has the steady state of a thermodynamic
one; :func:`detailed_balance` says whether, and gives that model's energies.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import sympy

from . import ir, symbolic
from .linear_forms import add_forms, negate


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
        reverse = [negate(log_k(v, u)) for u, v in steps]
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
        energies[v] = add_forms([energies[u], negate(log_k(u, v)), log_k(v, u)])
    ordered = {s: energies[s] for s in model.states if s in energies}
    return DetailedBalance(True, "every cycle balances", reference, ordered, cycles)
