"""When a kinetic scheme has a unique steady state, and what it is numerically.

The one rule, used by the checker and by the kinetic derivation: the steady state
is unique exactly when the transition graph has **one closed communicating class**
(a set of states that reach each other and that the scheme never leaves).
States outside it are *transient*: the scheme leaves them for good, and their
steady-state occupancy is zero. With two or more closed classes (two absorbing
states, say) the steady state depends on where the scheme starts.

    >>> edges = [("start", "a"), ("a", "b"), ("b", "a")]
    >>> classes = communicating_classes(["start", "a", "b"], edges)
    >>> classes.closed, classes.transient, classes.unique
    ((('a', 'b'),), ('start',), True)

The numerical reference (:func:`rate_matrix`, :func:`steady_state_numeric`) is the
normalized null space of the rate matrix, for tests and cross-checks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import ir
from .errors import BpmModelError

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Classes:
    """The closed communicating classes of a transition graph, and the transient states.

    Each class lists its states in the order given; classes are ordered by their
    first state, and ``transient`` keeps the given order.
    """

    closed: tuple[tuple[str, ...], ...]
    transient: tuple[str, ...]

    @property
    def unique(self) -> bool:
        """True when the steady state is unique (exactly one closed class)."""
        return len(self.closed) == 1

    def problem(self) -> str | None:
        """Why there is no unique steady state (a note naming the closed classes), else None."""
        if self.unique:
            return None
        groups = "; ".join("{" + ", ".join(c) + "}" for c in self.closed)
        text = (
            f"these groups of states are closed (once in one, the scheme never leaves it): {groups}"
        )
        if self.transient:
            text += f"; transient (left for good): {', '.join(self.transient)}"
        return text

    def transient_warning(self) -> str | None:
        """The warning for transient states (their occupancy is zero), else None."""
        if not self.transient:
            return None
        names = ", ".join(self.transient)
        return (
            f"transient state{'s' if len(self.transient) > 1 else ''} {names}: the scheme "
            "leaves and never returns, so the steady-state occupancy is zero"
        )


def communicating_classes(states: Sequence[str], edges: Iterable[tuple[str, str]]) -> Classes:
    """The closed classes and transient states of the graph with these states and edges.

    A state is in a closed class when every state it can reach can reach it back.
    Pure Python (reachability by search from each state): schemes are small.
    """
    order = {s: i for i, s in enumerate(states)}
    successors: dict[str, set[str]] = {s: set() for s in states}
    for source, target in edges:
        successors[source].add(target)
    reach = {s: _reachable(s, successors) for s in states}
    closed: list[tuple[str, ...]] = []
    placed: set[str] = set()
    transient = []
    for s in states:
        if all(s in reach[t] for t in reach[s]):
            if s not in placed:
                members = tuple(sorted(reach[s], key=order.__getitem__))
                closed.append(members)
                placed.update(members)
        else:
            transient.append(s)
    return Classes(tuple(closed), tuple(transient))


def _reachable(start: str, successors: dict[str, set[str]]) -> set[str]:
    seen, stack = {start}, [start]
    while stack:
        for nxt in successors[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def classes_of(model: ir.Model) -> Classes:
    """:func:`communicating_classes` of a kinetic model's transition graph."""
    return communicating_classes(model.states, ((t.source, t.target) for t in model.transitions))


def check_steady_state(model: ir.Model) -> None:
    """Raise :class:`BpmModelError` unless the scheme has exactly one closed class of states.

    With two or more (say, two absorbing states) the steady state depends on where
    the system starts, and every state's tree sum is zero.
    """
    problem = classes_of(model).problem()
    if problem is not None:
        raise BpmModelError(
            f"kinetic model {model.name} has no unique steady state",
            model.span,
            note=problem,
        )


def transient_states(model: ir.Model) -> tuple[str, ...]:
    """States the system leaves for good (their steady-state occupancy is zero)."""
    return classes_of(model).transient


# ------------------------------------------------------------------ numerical reference


def rate_matrix(model: ir.Model, values: dict[str, float]) -> np.ndarray:
    """``Q[i, j]`` = total rate from state i to state j (i != j), diagonal ``-sum`` of the row.

    ``values`` gives every parameter and energy appearing in a rate (natural units,
    energies in kT; fixed parameters default to their values); rates are evaluated
    from their log-rate linear forms.
    """
    import numpy as np

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
    import numpy as np

    q = np.array(rate_matrix, dtype=float)
    np.fill_diagonal(q, 0.0)
    np.fill_diagonal(q, -q.sum(axis=1))
    _, _, vt = np.linalg.svd(q.T)
    p = np.abs(vt[-1])
    return p / p.sum()
