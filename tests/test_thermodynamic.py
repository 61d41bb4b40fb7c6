"""Thermodynamic derivation and the rendering of closed forms."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy

from bpm.compiler import pipeline, symbolic, thermodynamic

MODELS = Path(__file__).resolve().parent.parent / "models"


def derive(name: str) -> symbolic.Derivation:
    path = MODELS / f"{name}.bpm"
    return thermodynamic.derive(pipeline.to_ir(path.read_text(), str(path)))


def test_lac_output_is_the_published_closed_form():
    d = derive("lac")
    G_C, G_R, G_I, t_sat = (d.symbols[n] for n in ("G_C", "G_R", "G_I", "t_sat"))
    on = sympy.exp(-G_R) + sympy.exp(-(G_C + G_R + G_I))
    expected = t_sat * on / (1 + sympy.exp(-G_C) + on)
    assert sympy.simplify(d.outputs["t"] - expected) == 0


def test_lac_weights_partition_function_and_probabilities():
    d = derive("lac")
    G_C, G_R, G_I = (d.symbols[n] for n in ("G_C", "G_R", "G_I"))
    assert d.weights == {
        "empty": 1,
        "crp": sympy.exp(-G_C),
        "rnap": sympy.exp(-G_R),
        "crp_rnap": sympy.exp(-G_C - G_R - G_I),
    }
    assert d.Z == sum(d.weights.values())
    assert sympy.simplify(sum(d.P.values()) - 1) == 0


def test_fixed_energy_and_constant_enter_the_weight():
    d = derive("simple_repression")
    G_R, mu_R = d.symbols["G_R"], d.symbols["mu_R"]
    assert d.weights["repressor"] == sympy.exp(-G_R - mu_R)


def test_kinetic_model_is_refused():
    path = MODELS / "open_complex.bpm"
    with pytest.raises(ValueError, match="not thermodynamic"):
        thermodynamic.derive(pipeline.to_ir(path.read_text(), str(path)))


@pytest.mark.parametrize("name", ["lac", "simple_repression", "activated_repressed"])
def test_render_text_is_deterministic_and_complete(name):
    d = derive(name)
    text = symbolic.render_text(d)
    assert text == symbolic.render_text(derive(name))
    for s in d.model.states:
        assert f"  w({s}) = " in text and f"  P({s}) = " in text
    assert "  Z = " in text
    for o in d.model.outputs:
        assert f"  {o.name} = " in text


def test_render_text_of_lac():
    text = symbolic.render_text(derive("lac"))
    assert "  w(crp_rnap) = exp(-G_C - G_I - G_R)\n" in text
    assert "  Z = 1 + exp(-G_C) + exp(-G_R) + exp(-G_C - G_I - G_R)\n" in text


def test_render_latex():
    latex = symbolic.render_latex(derive("lac"))
    assert latex.startswith("\\begin{align*}") and latex.endswith("\\end{align*}\n")
    assert r"w_{\mathrm{crp\_rnap}} &= e^{- G_{C} - G_{I} - G_{R}}" in latex
    assert latex.count("&=") == 4 + 1 + 4 + 1
