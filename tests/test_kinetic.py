"""Kinetic derivation: spanning trees, matrix-tree counts, King-Altman forms, detailed balance."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kinetic_models import kinetic_model, open_complex

from bpm.compiler import ir, kinetic, pipeline, thermodynamic

MODELS = Path(__file__).resolve().parent.parent / "models"


def load(name: str):
    return pipeline.to_ir((MODELS / f"{name}.bpm").read_text(), name)


# ------------------------------------------------------------------ random schemes


@st.composite
def schemes(draw, min_states: int = 2, max_states: int = 7):
    """A strongly connected scheme (a random Hamiltonian cycle plus random extra edges)
    and log-uniform rates over 1e-3..1e3, one parameter per transition."""
    n = draw(st.integers(min_states, max_states))
    order = draw(st.permutations(range(n)))
    edges = {(order[i], order[(i + 1) % n]) for i in range(n)}
    others = [(u, v) for u in range(n) for v in range(n) if u != v and (u, v) not in edges]
    extra = draw(st.lists(st.sampled_from(others), unique=True, max_size=2 * n)) if others else []
    pairs = sorted(edges) + sorted(extra)
    rows = [(f"s{u}", f"s{v}", f"k{i}") for i, (u, v) in enumerate(pairs)]
    logs = draw(
        st.lists(st.floats(math.log(1e-3), math.log(1e3)), min_size=len(rows), max_size=len(rows))
    )
    model = kinetic_model("random", rows)
    values = {f"k{i}": math.exp(x) for i, x in enumerate(logs)}
    return model, values


def king_altman_numeric(model, values) -> np.ndarray:
    """Occupancies from the enumerated trees, summed in log space."""
    log_k = [math.log(values[t.rate.params[0][0]]) for t in model.transitions]
    trees = kinetic.trees_into(model)
    logw = np.array(
        [
            np.logaddexp.reduce([sum(log_k[i] for i in tree) for tree in trees[s]])
            for s in model.states
        ]
    )
    w = np.exp(logw - logw.max())
    return w / w.sum()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schemes())
def test_king_altman_equals_null_space(scheme):
    model, values = scheme
    expected = kinetic.steady_state_numeric(kinetic.rate_matrix(model, values))
    np.testing.assert_allclose(king_altman_numeric(model, values), expected, rtol=0, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(schemes())
def test_enumeration_matches_matrix_tree_theorem(scheme):
    model, _ = scheme
    trees = kinetic.trees_into(model)
    for state in model.states:
        assert len(trees[state]) == kinetic.count_trees(model, state)
        assert len(set(trees[state])) == len(trees[state])
        assert list(trees[state]) == sorted(trees[state])
        for tree in trees[state]:
            assert_in_tree(model, tree, state)


def assert_in_tree(model, tree, root):
    """Every state but the root leaves by exactly one tree edge, and following them reaches root."""
    successor = {}
    for i in tree:
        t = model.transitions[i]
        assert t.source not in successor and t.source != root
        successor[t.source] = t.target
    assert set(successor) == set(model.states) - {root}
    for state in model.states:
        seen = set()
        while state != root:
            assert state not in seen
            seen.add(state)
            state = successor[state]


@settings(max_examples=25, deadline=None)
@given(schemes(max_states=4))
def test_enumeration_matches_networkx(scheme):
    model, _ = scheme
    assert kinetic.trees_into(model) == kinetic.trees_into_networkx(model)


def complete(n: int):
    rows = [(f"s{u}", f"s{v}", f"k{u}_{v}") for u in range(n) for v in range(n) if u != v]
    return kinetic_model(f"complete{n}", rows)


@pytest.mark.parametrize("n", range(2, 9))
def test_complete_graph_counts(n):
    model = complete(n)
    assert all(kinetic.count_trees(model, s) == n ** (n - 2) for s in model.states)
    assert kinetic.total_trees(model) == n ** (n - 1)
    if n <= 5:
        assert all(len(t) == n ** (n - 2) for t in kinetic.trees_into(model).values())


def test_budget_is_checked_before_enumerating():
    model = complete(8)  # 8**7 = 2,097,152 trees
    assert not kinetic.within_budget(model)
    with pytest.raises(kinetic.TreeBudgetExceeded) as info:
        kinetic.derive(model)
    assert info.value.count == 8**7 and info.value.budget == kinetic.DEFAULT_TREE_BUDGET
    assert kinetic.within_budget(complete(5))  # 625 trees


# ------------------------------------------------------------------ the graph


def test_transition_graph_is_a_view_of_the_ir():
    model = load("open_complex")
    graph = kinetic.transition_graph(model)
    assert list(graph.nodes) == list(model.states)
    for index, t in enumerate(model.transitions):
        assert graph[t.source][t.target]["index"] == index
        assert graph[t.source][t.target]["rate"] == t.rate


def test_open_complex_trees():
    model = load("open_complex")
    assert kinetic.trees_into(model) == {
        "unbound": ((1, 3), (2, 3)),
        "closed": ((0, 3),),
        "open": ((0, 2),),
    }


def test_parallel_transitions_are_separate_trees():
    model = kinetic_model(
        "mm", [("free", "bound", "k_on"), ("bound", "free", "k_off"), ("bound", "free", "k_cat")]
    )
    assert kinetic.trees_into(model) == {"free": ((1,), (2,)), "bound": ((0,),)}
    assert kinetic.count_trees(model, "free") == 2


# ------------------------------------------------------------------ closed forms


def test_open_complex_closed_form():
    d = kinetic.derive(load("open_complex"))
    s = d.symbols
    k1, k2, k3, k4 = s["k_on"] * sympy.exp(-s["G_R"]), s["k_off"], s["k_open"], s["k_init"]
    expected = k1 * k3 * k4 / (k2 * k4 + k3 * k4 + k1 * k4 + k1 * k3)
    assert sympy.simplify(d.outputs["t"] - expected) == 0
    assert sympy.simplify(sum(d.P.values()) - 1) == 0


def test_hand_built_model_matches_the_front_end():
    assert (
        kinetic.derive(open_complex()).outputs["t"]
        == kinetic.derive(load("open_complex")).outputs["t"]
    )


@pytest.mark.parametrize("name", ["open_complex", "michaelis_menten"])
def test_derivation_matches_null_space(name):
    model = load(name)
    d = kinetic.derive(model)
    rng = np.random.default_rng(0)
    values = {n: float(rng.uniform(0.1, 3.0)) for n in d.symbols}
    subs = {d.symbols[n]: v for n, v in values.items()}
    for p in model.params:
        if p.value is not None:
            subs[d.symbols[p.name]] = p.value
    closed = np.array([float(d.P[s].subs(subs)) for s in model.states])
    numeric = kinetic.steady_state_numeric(
        kinetic.rate_matrix(
            model, values | {p.name: p.value for p in model.params if p.value is not None}
        )
    )
    np.testing.assert_allclose(closed, numeric, rtol=1e-10)


# ------------------------------------------------------------------ detailed balance

SQUARE_KINETIC = """
model square_kinetic
energy G_A
energy G_B
energy G_I
param k_A > 0
param k_B > 0
kinetic {
    empty <-> a  : k_A * exp(-G_A), k_A
    empty <-> b  : k_B * exp(-G_B), k_B
    a     <-> ab : k_B * exp(-G_B), k_B * exp(G_I)
    b     <-> ab : k_A * exp(-G_A), k_A * exp(G_I)
}
output t = P(ab)
"""

SQUARE_THERMODYNAMIC = """
model square_thermodynamic
energy G_A
energy G_B
energy G_I
thermodynamic {
    empty : 0
    a     : G_A
    b     : G_B
    ab    : G_A + G_B + G_I
}
output t = P(ab)
"""


def test_detailed_balance_gives_the_thermodynamic_energies():
    model = pipeline.to_ir(SQUARE_KINETIC, "square_kinetic")
    balance = kinetic.detailed_balance(model)
    assert balance.holds and balance.reference == "empty"
    assert {s: ir.format_linear(g) for s, g in balance.energies.items()} == {
        "empty": "0",
        "a": "G_A",
        "b": "G_B",
        "ab": "G_A + G_B + G_I",
    }
    assert "equivalent to a thermodynamic one" in balance.describe()


def test_balanced_kinetic_and_thermodynamic_pair_agree():
    kin = kinetic.derive(pipeline.to_ir(SQUARE_KINETIC, "square_kinetic"))
    thermo = thermodynamic.derive(pipeline.to_ir(SQUARE_THERMODYNAMIC, "square_thermodynamic"))
    rng = np.random.default_rng(1)
    for _ in range(5):
        values = {n: float(rng.uniform(-3, 3)) for n in ("G_A", "G_B", "G_I")}
        values |= {"k_A": float(rng.uniform(0.1, 10)), "k_B": float(rng.uniform(0.1, 10))}
        for state in ("empty", "a", "b", "ab"):
            k = float(kin.P[state].subs({kin.symbols[n]: v for n, v in values.items()}))
            t = float(thermo.P[state].subs({thermo.symbols[n]: values[n] for n in thermo.symbols}))
            assert k == pytest.approx(t, rel=1e-12)


def test_detailed_balance_fails_around_an_unbalanced_cycle():
    text = SQUARE_KINETIC.replace("k_A * exp(G_I)", "k_A")
    balance = kinetic.detailed_balance(pipeline.to_ir(text, "square"))
    assert not balance.holds
    assert "around the cycle" in balance.reason and "G_I" in balance.reason


def test_detailed_balance_needs_every_reverse():
    balance = kinetic.detailed_balance(load("open_complex"))
    assert not balance.holds and "has no reverse" in balance.reason


def test_a_chain_always_balances():
    model = kinetic_model(
        "chain",
        [("a", "b", "k1", "G"), ("b", "a", "k2"), ("b", "c", "k3"), ("c", "b", "k4")],
        energies=("G",),
    )
    balance = kinetic.detailed_balance(model)
    assert balance.holds
    assert ir.format_linear(balance.energies["c"]) == "G - log(k1) + log(k2) - log(k3) + log(k4)"


@settings(max_examples=30, deadline=None)
@given(schemes(max_states=6), st.randoms(use_true_random=False))
def test_balanced_rates_reproduce_boltzmann(scheme, random):
    """Make a random scheme reversible with rates balanced by random energies: P is Boltzmann."""
    model, _ = scheme
    energy = {s: random.uniform(-3, 3) for s in model.states}
    links = sorted({tuple(sorted((t.source, t.target))) for t in model.transitions})
    rows, values = [], {}
    for u, v in links:
        base = math.exp(random.uniform(-2, 2))
        half = (energy[v] - energy[u]) / 2
        rows += [(u, v, f"k_{u}_{v}"), (v, u, f"k_{v}_{u}")]
        values[f"k_{u}_{v}"], values[f"k_{v}_{u}"] = base * math.exp(-half), base * math.exp(half)
    reversible = kinetic_model("reversible", rows)
    p = kinetic.steady_state_numeric(kinetic.rate_matrix(reversible, values))
    boltzmann = np.array([math.exp(-energy[s]) for s in reversible.states])
    np.testing.assert_allclose(p, boltzmann / boltzmann.sum(), rtol=1e-7, atol=1e-12)
    # Symbolically every rate is its own parameter, so only cycle-free schemes balance.
    balance = kinetic.detailed_balance(reversible)
    assert balance.holds == (len(links) == len(reversible.states) - 1)


# ------------------------------------------------------------------ docs/kinetic.md

DOC = Path(__file__).resolve().parent.parent / "docs" / "kinetic.md"
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


@pytest.mark.parametrize(
    "code", PYTHON_BLOCKS, ids=[f"block{i}" for i in range(len(PYTHON_BLOCKS))]
)
def test_doc_examples_run_and_print_what_they_say(code, monkeypatch, capsys):
    """Each block runs from the repository root; ``print(...)  # text`` must print text."""
    monkeypatch.chdir(DOC.parent.parent)
    exec(compile(code, str(DOC), "exec"), {})  # noqa: S102
    printed = capsys.readouterr().out
    for expected in re.findall(r"^print\(.*\)\s+# (.*)$", code, re.M):
        assert expected in printed
    for expected in re.findall(r"^#     (.*)$", code, re.M):
        assert expected in printed
