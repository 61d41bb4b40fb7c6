"""The tree budget: one default, one meaning of ``None``, and trees counted once per compile.

``tree_budget=None`` is :data:`bpm.compiler.kinetic.DEFAULT_TREE_BUDGET` everywhere;
``math.inf`` is no limit. A compile counts the spanning trees into each state once
(one exact elimination for all states) and enumerates them once; the derivation
carries them to code generation.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
from kinetic_models import kinetic_model

import bpm.compiler
from bpm.compiler import kinetic, pipeline, trees

MODELS = Path(__file__).resolve().parent.parent / "models"
OPEN_COMPLEX = (MODELS / "open_complex.bpm").read_text()


@pytest.fixture
def calls(monkeypatch) -> Counter:
    """Counts tree countings (``count_all_trees``) and enumerations (``enumerate_trees``)."""
    seen: Counter = Counter()
    count, enumerate_ = trees.count_all_trees, trees.enumerate_trees

    def counting(model):
        seen["countings"] += 1
        return count(model)

    def enumerating(model):
        seen["enumerations"] += 1
        return enumerate_(model)

    for module in (trees, kinetic):
        monkeypatch.setattr(module, "count_all_trees", counting)
    for module in (trees, kinetic):
        monkeypatch.setattr(module, "enumerate_trees", enumerating)
    return seen


def test_compile_counts_and_enumerates_once(calls):
    pipeline.compile(OPEN_COMPLEX, emit="torch", name="models/open_complex.bpm")
    assert calls == {"countings": 1, "enumerations": 1}


def test_load_counts_and_enumerates_once(calls):
    bpm.compiler.load(OPEN_COMPLEX + "# counted once\n", name="open_complex.bpm")
    assert calls == {"countings": 1, "enumerations": 1}


def test_above_the_budget_nothing_is_enumerated(calls):
    pipeline.compile(OPEN_COMPLEX, emit="torch", name="open_complex.bpm", tree_budget=0)
    assert calls == {"countings": 1}


def test_the_derivation_carries_the_trees():
    model = pipeline.to_ir(OPEN_COMPLEX, "open_complex")
    derivation = pipeline.derive(model)
    assert derivation.trees == kinetic.trees_into(model)
    assert derivation.tree_counts == {"unbound": 2, "closed": 1, "open": 1}
    thermo = pipeline.derive(pipeline.to_ir((MODELS / "lac.bpm").read_text(), "lac"))
    assert thermo.trees is None and thermo.tree_counts is None


def complete(n: int):
    states = [f"s{i}" for i in range(n)]
    return kinetic_model(
        f"complete{n}", [(a, b, f"k{a}{b}") for a in states for b in states if a != b]
    )


def test_none_is_the_default_and_inf_no_limit():
    model = complete(6)  # 6**5 = 7776 trees, above the default
    assert kinetic.tree_limit(None) == kinetic.DEFAULT_TREE_BUDGET == 2000
    assert not kinetic.within_budget(model, None)
    assert kinetic.within_budget(model, math.inf)
    with pytest.raises(kinetic.TreeBudgetExceeded) as info:
        kinetic.derive(model, None)
    assert info.value.budget == 2000 and info.value.count == 7776
    assert info.value.counts == {s: 6**4 for s in model.states}
    assert pipeline.closed_forms(model, None) is None
    assert pipeline.closed_forms(complete(4), None).tree_counts == {
        s: 16 for s in complete(4).states
    }
