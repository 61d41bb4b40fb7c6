"""A thermodynamic model as a state diagram: each state with its free energy, and an edge
from each state to the states that add to it one step of binding.

A state ``s`` lies below ``t`` when ``t``'s energy holds every term of ``s``'s with at
least the same weight (same sign): ``crp`` (``G_C``) below ``crp_rnap``
(``G_C + G_R + G_I``). The edges are the covering pairs of that order (no state between
them), each labelled with what the step adds, ``t``'s energy minus ``s``'s. For lac:
``empty -> crp`` (``+G_C``), ``empty -> rnap``, ``crp -> crp_rnap`` (``+G_I + G_R``) and
``rnap -> crp_rnap``. States no order reaches stand alone.
"""

from __future__ import annotations

from . import ir
from .linear_forms import add_forms


def below(lower: ir.LinearForm, upper: ir.LinearForm) -> bool:
    """True when every term of ``lower`` is in ``upper`` with the same sign and at least
    its size, and the two differ in their terms.

    >>> below(ir.LinearForm.of({"G_C": 1}), ir.LinearForm.of({"G_C": 1, "G_R": 1}))
    True
    """
    mine, theirs = dict(lower.terms), dict(upper.terms)
    if mine == theirs:
        return False
    return all(c * theirs.get(n, 0.0) > 0 and abs(theirs[n]) >= abs(c) for n, c in mine.items())


def state_edges(model: ir.Model) -> list[tuple[str, str, str]]:
    """``(lower, upper, what the step adds)`` for every covering pair of the states, in
    declaration order."""
    states = model.thermo_states
    edges = []
    for s in states:
        for t in states:
            if not below(s.energy, t.energy):
                continue
            if any(below(s.energy, u.energy) and below(u.energy, t.energy) for u in states):
                continue
            step = add_forms([t.energy, add_forms([s.energy], sign=-1.0)])
            text = ir.format_linear(step)
            edges.append((s.name, t.name, text if text.startswith("-") else "+" + text))
    return edges


def state_label(state: ir.State) -> str:
    """A state's node label: its name over its free energy (``crp`` / ``G = G_C``)."""
    return f"{state.name}\nG = {ir.format_linear(state.energy)}"


def layers(model: ir.Model) -> dict[str, tuple[float, float]]:
    """Positions for the diagram: a state's column is the longest chain of steps below
    it (unbound states at the left), states of one column spread evenly about the middle
    ordered by the mean height of the states each steps up from (so arrows cross less).

    >>> from bpm.compiler import pipeline
    >>> text = "model m\\nenergy A\\nthermodynamic { e : 0\\n a : A }\\noutput t = P(a)"
    >>> layers(pipeline.to_ir(text, "m"))
    {'e': (0.0, 0.0), 'a': (2.4, 0.0)}
    """
    depth = {s: 0 for s in model.states}
    edges = state_edges(model)
    for _ in model.states:  # longest paths in a DAG: relax as often as there are states
        for lower, upper, _step in edges:
            depth[upper] = max(depth[upper], depth[lower] + 1)
    columns: dict[int, list[str]] = {}
    for s in model.states:
        columns.setdefault(depth[s], []).append(s)
    pos: dict[str, tuple[float, float]] = {}
    for column in sorted(columns):
        names = columns[column]
        if column:
            parents = {s: [pos[a][1] for a, b, _ in edges if b == s and a in pos] for s in names}
            names = sorted(names, key=lambda s: -sum(parents[s]) / max(len(parents[s]), 1))
        for k, s in enumerate(names):
            pos[s] = (2.4 * column, 1.3 * ((len(names) - 1) / 2 - k))
    return {s: pos[s] for s in model.states}
