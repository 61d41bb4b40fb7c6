"""The grammar and the AST: every model parses, dumps to its golden AST, and round-trips."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bpm.compiler import ast
from bpm.compiler.errors import BpmSyntaxError
from bpm.compiler.ir import dump
from bpm.compiler.parse import parse, unparse, unparse_expr

HERE = Path(__file__).parent
MODELS = sorted((HERE.parent / "models").glob("*.bpm"))
REGEN = os.environ.get("BPM_REGEN_GOLDEN") == "1"


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_ast_golden(path: Path):
    got = dump(parse(path.read_text(), path.name)) + "\n"
    expected = HERE / "golden" / f"{path.stem}.ast.txt"
    if REGEN:
        expected.parent.mkdir(exist_ok=True)
        expected.write_text(got)
    assert got == expected.read_text()


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_unparse_round_trip(path: Path):
    tree = parse(path.read_text())
    assert parse(unparse(tree)) == tree


def test_design_md_lac_model_parses_as_written():
    text = """
# Four-state thermodynamic model of the E. coli lac promoter (Kinney et al. 2010).
model lac

sequence x: dna[75]               # 75-bp promoter variants; x[i] is 0-based

energy G_C = matrix(x[1:27])      # CRP-DNA binding energy: additive matrix + offset, learned
energy G_R = matrix(x[34:75])     # RNAP-DNA binding energy
energy G_I                        # CRP-RNAP interaction: one learned number
param  t_sat > 0                  # transcription rate at full RNAP occupancy

thermodynamic {
    empty    : 0
    crp      : G_C
    rnap     : G_R
    crp_rnap : G_C + G_R + G_I
}

output t = t_sat * (P(rnap) + P(crp_rnap))
"""
    tree = parse(text)
    assert tree.name.name == "lac" and tree.doc is None
    energies = [s for s in tree.statements if isinstance(s, ast.EnergyDecl)]
    assert [e.name.name for e in energies] == ["G_C", "G_R", "G_I"]
    assert (energies[0].site.start, energies[0].site.stop) == (1, 27)


def test_spans_point_at_the_source():
    text = "model m\nparam k > 0\nkinetic {\n  a -> b : k\n  b -> a : 2 }\noutput t = P(b)\n"
    tree = parse(text)
    block = tree.statements[1]
    rate = block.transitions[0].rate
    assert (rate.span.line, rate.span.column) == (4, 12)
    assert text[rate.span.start : rate.span.end] == "k"
    output = tree.statements[2]
    assert text[output.span.start : output.span.end] == "output t = P(b)"


def test_precedence():
    tree = parse(
        "model m param a param b param c kinetic { x -> y : 1 y -> x : 1 } "
        "output t = -a^2 + b*c/2 - (a - b)"
    )
    expr = tree.statements[-1].expr
    assert unparse_expr(expr) == "-a^2 + b * c / 2 - (a - b)"
    assert isinstance(expr.left.left, ast.UnaryOp) and expr.left.left.operand.op == "^"


def test_docstrings_are_dedented():
    tree = parse('model m\n"""\n    First line.\n      Indented.\n"""\nparam k')
    assert tree.doc == "First line.\n  Indented."
    assert parse('model m "One line." param k').doc == "One line."


def test_syntax_error_position():
    with pytest.raises(BpmSyntaxError) as info:
        parse("model m\nparam k >\n", "f.bpm")
    assert info.value.span.line == 2
    assert info.value.render().startswith("f.bpm:2:")


@pytest.mark.parametrize(
    "clause, first, last, reference",
    [
        ("positions -75 to -1 relative to TSS", -75, -1, "TSS"),
        ('positions -3 to +6 relative to "5\' splice site"', -3, 6, "5' splice site"),
        ("positions 2 to 10", 2, 10, None),
        ("positions -4 to 5 relative to to", -4, 5, "to"),  # 'to' is a keyword only there
    ],
)
def test_positions_clause_parses_and_round_trips(clause, first, last, reference):
    text = f"model m\nsequence x: dna[9] {clause}\nenergy G = matrix(x[0:9])\n"
    tree = parse(text + "thermodynamic { to : 0  positions : G }\noutput t = P(to)")
    (seq, *_) = tree.statements
    n = seq.numbering
    assert (n.first, n.last, n.reference) == (first, last, reference)
    assert text[n.first_span.start : n.first_span.end].lstrip("+") == str(first)
    assert parse(unparse(tree)) == tree
