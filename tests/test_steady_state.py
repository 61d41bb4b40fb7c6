"""One steady-state rule: a unique steady state is exactly one closed communicating class.

The checker and the kinetic derivation use the same rule
(:mod:`bpm.compiler.steady_state`); transient states are accepted, with a warning,
and get occupancy zero in the compiled module.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from kinetic_models import kinetic_model

from bpm.compiler import kinetic, pipeline, steady_state
from bpm.compiler.errors import BpmModelError
from bpm.compiler.loader import load

LEAK = """model leak
sequence x: dna[2]
energy G = matrix(x[0:2])
param k1 > 0
param k2 > 0 init 2
param k3 > 0 init 0.5
kinetic {
    start -> a : k1
    a <-> b : k2 * exp(-G), k3
}
output t = P(b)
"""


def test_classes_of_a_graph():
    edges = [("start", "a"), ("a", "b"), ("b", "a"), ("c", "d"), ("d", "c"), ("start", "c")]
    classes = steady_state.communicating_classes(["start", "a", "b", "c", "d"], edges)
    assert classes.closed == (("a", "b"), ("c", "d"))
    assert classes.transient == ("start",)
    assert not classes.unique
    assert "{a, b}; {c, d}" in classes.problem()


def test_a_strongly_connected_scheme_has_one_class_and_no_transients():
    classes = steady_state.communicating_classes(["a", "b"], [("a", "b"), ("b", "a")])
    assert classes.closed == (("a", "b"),) and classes.transient == ()
    assert classes.problem() is None and classes.transient_warning() is None


def test_transient_states_are_accepted_with_a_warning():
    text = (
        "model m\nparam k > 0\nkinetic {\n  start -> a : k\n  a <-> b : k, 1\n}\noutput t = P(a)\n"
    )
    model, warnings = pipeline.to_ir_with_warnings(text, "m.bpm")
    assert model.states == ("start", "a", "b")
    [warning] = warnings.items
    assert "start" in warning.message and "occupancy is zero" in warning.message
    assert warning.span.line == 3  # the kinetic keyword


def test_two_closed_classes_are_an_error_naming_them():
    text = (
        "model m\nparam k > 0\nkinetic {\n  mid -> left : k\n  mid -> right : 1\n}\n"
        "output t = P(left)\n"
    )
    with pytest.raises(BpmModelError, match="no unique steady state") as info:
        pipeline.to_ir(text, "m.bpm")
    assert "{left}; {right}" in info.value.render()


def test_the_derivation_uses_the_same_rule():
    trap = kinetic_model("trap", [("mid", "left", "k1"), ("mid", "right", "k2")])
    with pytest.raises(BpmModelError, match="no unique steady state") as info:
        kinetic.derive(trap)
    assert "{left}; {right}" in info.value.render()
    leak = kinetic_model("leak", [("start", "a", "k1"), ("a", "b", "k2"), ("b", "a", "k3")])
    assert kinetic.transient_states(leak) == ("start",)
    assert kinetic.derive(leak).weights["start"] == 0


@pytest.mark.parametrize("budget", [None, 0])
def test_compiled_transient_model_matches_the_null_space(budget):
    """Closed form (trees) and linear solve both give P(start) = 0 and the null space of Q."""
    model = pipeline.to_ir(LEAK, "leak.bpm")
    module = load(LEAK, name="leak.bpm", tree_budget=budget)().double()
    x = torch.tensor([[0, 1], [2, 3], [3, 3]])
    P = module.P(x).detach().numpy()
    np.testing.assert_array_equal(P[:, model.states.index("start")], 0.0)
    params = {k: float(v) for k, v in module.get_params().items() if v.dim() == 0}
    G = module.energies(x)["G"].detach()
    for n in range(len(x)):
        q = kinetic.rate_matrix(model, params | {"G": float(G[n])})
        np.testing.assert_allclose(P[n], kinetic.steady_state_numeric(q), rtol=1e-9, atol=1e-12)
