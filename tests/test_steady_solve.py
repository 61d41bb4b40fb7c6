"""The steady state above the tree budget (state reduction in log space) against 80 digits.

Rates spanning 1e-12..1e12 in float32 (ladders, parallel paths, complete graphs,
random graphs; the old linear solve put all mass on the wrong state) and
exp(+-500) in float64 (where the old solve raised LinAlgError), checked against
mpmath at 80 digits: a linear solve of the rate equations, and the King-Altman
sum over every spanning tree where the rates span too much for that. Gradients
by ``torch.autograd.gradcheck``.
"""

from __future__ import annotations

import math
import random

import mpmath
import pytest
import torch

from bpm.compiler import kinetic, pipeline

DIGITS = 80


def scheme(name: str, pairs: list[tuple[str, str]]) -> str:
    """A kinetic model with one rate constant per direction of each pair."""
    rows, params = [], []
    for j, (u, v) in enumerate(pairs):
        rows.append(f"  {u} <-> {v} : f{j}, r{j}")
        params += [f"f{j}", f"r{j}"]
    head = [f"model {name}", *(f"param {p} > 0" for p in params)]
    return "\n".join([*head, "kinetic {", *rows, "}", f"output t = P({pairs[0][0]})", ""])


def ladder(rungs: int) -> list[tuple[str, str]]:
    pairs = [(f"a{i}", f"b{i}") for i in range(rungs)]
    for i in range(rungs - 1):
        pairs += [(f"a{i}", f"a{i + 1}"), (f"b{i}", f"b{i + 1}")]
    return pairs


def parallel(paths: int, length: int = 2) -> list[tuple[str, str]]:
    pairs = []
    for p in range(paths):
        names = ["start", *(f"p{p}_{i}" for i in range(length)), "end"]
        pairs += list(zip(names, names[1:], strict=False))
    return pairs


def complete(n: int) -> list[tuple[str, str]]:
    return [(f"s{i}", f"s{j}") for i in range(n) for j in range(i + 1, n)]


def random_graph(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """A connected random graph: a random spanning tree plus extra edges."""
    pairs = [(f"s{rng.randrange(i)}", f"s{i}") for i in range(1, n)]
    for i in range(n):
        for j in range(i + 1, n):
            if rng.random() < 0.3 and (f"s{i}", f"s{j}") not in pairs:
                pairs.append((f"s{i}", f"s{j}"))
    return pairs


def build(text: str, dtype: torch.dtype):
    source = pipeline.compile(text, "torch", "solve.bpm", tree_budget=0)
    assert "state reduction" in source
    namespace: dict = {}
    exec(compile(source, "solve.bpm", "exec"), namespace)
    return namespace["Model"]().to(dtype), pipeline.to_ir(text, "solve.bpm")


def set_log_rates(module, log_rates: list[float]) -> list[float]:
    """Set each transition's rate; returns the log-rates as the module holds them."""
    held = []
    with torch.no_grad():
        for j, value in enumerate(log_rates):
            name = f"f{j // 2}" if j % 2 == 0 else f"r{j // 2}"
            raw = getattr(module, f"param_{name}_raw")
            raw.fill_(value)
            held.append(float(raw))
    return held


def reference_solve(model, log_rates: list[float]) -> list[mpmath.mpf]:
    """80-digit steady state: Q^T p = 0 with sum(p) = 1, by LU."""
    with mpmath.workdps(DIGITS):
        return _solve(model, log_rates)


def _solve(model, log_rates: list[float]) -> list[mpmath.mpf]:
    states = model.states
    n = len(states)
    Q = mpmath.zeros(n, n)
    for t, value in zip(model.transitions, log_rates, strict=True):
        a, b = states.index(t.source), states.index(t.target)
        rate = mpmath.exp(mpmath.mpf(value))
        Q[a, b] += rate
        Q[a, a] -= rate
    A = Q.T
    for j in range(n):
        A[0, j] = 1
    b = mpmath.matrix([1] + [0] * (n - 1))
    return list(mpmath.lu_solve(A, b))


def reference_trees(model, log_rates: list[float]) -> list[mpmath.mpf]:
    """80-digit King-Altman occupancies: sums over spanning trees of rate products."""
    trees = kinetic.trees_into(model)
    with mpmath.workdps(DIGITS):
        logs = [mpmath.mpf(v) for v in log_rates]
        weights = [
            sum(mpmath.exp(sum(logs[i] for i in tree)) for tree in trees[s]) for s in model.states
        ]
        Z = sum(weights)
        return [w / Z for w in weights]


def occupancy(module) -> torch.Tensor:
    with torch.no_grad():
        return module.P()


SHAPES = {"ladder6": ladder(6), "parallel8": parallel(8), "complete6": complete(6)}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_float32_rates_spanning_1e12(shape):
    module, model = build(scheme(shape, SHAPES[shape]), torch.float32)
    rng = random.Random(shape)
    worst = 0.0
    for _ in range(20):
        logs = [rng.uniform(math.log(1e-12), math.log(1e12)) for _ in model.transitions]
        held = set_log_rates(module, logs)
        p = occupancy(module).double()
        ref = reference_solve(model, held)
        worst = max(worst, max(abs(float(r) - float(q)) for r, q in zip(ref, p, strict=True)))
    assert worst < 1e-5, worst


def test_float32_random_graphs():
    rng = random.Random(7)
    for trial in range(12):
        pairs = random_graph(rng, rng.randint(3, 9))
        module, model = build(scheme(f"g{trial}", pairs), torch.float32)
        logs = [rng.uniform(math.log(1e-12), math.log(1e12)) for _ in model.transitions]
        held = set_log_rates(module, logs)
        p = occupancy(module).double()
        ref = reference_solve(model, held)
        assert max(abs(float(r) - float(q)) for r, q in zip(ref, p, strict=True)) < 1e-5


@pytest.mark.parametrize("seed", range(6))
def test_float64_rates_exp_500(seed):
    """Rates exp(+-500): the spread defeats any linear solve; trees give the truth."""
    rng = random.Random(seed)
    pairs = complete(5) if seed == 0 else random_graph(rng, rng.randint(3, 6))
    module, model = build(scheme(f"x{seed}", pairs), torch.float64)
    logs = [rng.uniform(-500, 500) for _ in model.transitions]
    held = set_log_rates(module, logs)
    p = occupancy(module)
    ref = reference_trees(model, held)
    for r, q in zip(ref, p, strict=True):
        assert abs(float(r) - float(q)) < 1e-12
        if r > 1e-300:  # relative error where float64 holds the value
            assert abs(float(q) / float(r) - 1) < 1e-9


def test_gradients_float64():
    """Gradients of the occupancies with respect to every log rate constant."""
    module, model = build(scheme("grad", complete(4) + [("s0", "s4")]), torch.float64)
    rng = random.Random(3)
    set_log_rates(module, [rng.uniform(-5, 5) for _ in model.transitions])
    names = [n for n, _ in module.named_parameters() if n.startswith("param_")]
    values = tuple(module.get_parameter(n).detach().clone().requires_grad_(True) for n in names)

    module.forward = module.P  # the call below then gives every occupancy

    def occupancies(*raws):
        return torch.func.functional_call(module, dict(zip(names, raws, strict=True)), ())

    assert occupancies(*values).shape == (5,)
    assert torch.autograd.gradcheck(occupancies, values)
