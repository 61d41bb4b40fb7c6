"""``bpm show`` summaries."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpm.compiler import pipeline, show

MODELS = Path(__file__).resolve().parent.parent / "models"


def describe(name: str) -> str:
    m = pipeline.to_ir((MODELS / f"{name}.bpm").read_text(), f"models/{name}.bpm")
    return show.describe(m, pipeline.derive(m))


def test_lac_summary():
    text = describe("lac")
    assert "  G_C: matrix(x[1:27]), width 26, positions -74 to -49, 105 values, learned\n" in text
    assert "sequence x: dna 'ACGT', length 75, positions -75 to -1 relative to TSS\n" in text
    assert "  crp_rnap  G = G_C + G_I + G_R\n" in text
    assert "  G_R: [41, 4] learned\n" in text
    assert "learnable values: 272\n" in text  # 26*4+1 + 41*4+1 + G_I + t_sat
    assert "    Z = 1 + exp(-G_C) + exp(-G_R) + exp(-G_C - G_I - G_R)\n" in text


def test_kinetic_summary_counts_trees():
    text = describe("open_complex")
    assert "  unbound  2 spanning trees into it\n" in text
    assert "  closed   1 spanning tree into it\n" in text
    assert "  total spanning trees: 4\n" in text
    assert "  0: unbound -> closed : k_on*exp(-G_R)\n" in text


@pytest.mark.parametrize("name", sorted(p.stem for p in MODELS.glob("*.bpm")))
def test_every_model_is_described(name):
    text = describe(name)
    assert text.startswith(f"model {name} (") and "learnable values: " in text
