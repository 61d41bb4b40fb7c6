"""Semantic checks: every bad input in tests/bad/ gives its exact message and caret.

Regenerate the expected ``.err`` files with ``BPM_REGEN_GOLDEN=1 pytest tests/test_check.py``
(then read the diff: each message is a promise to a user).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bpm.compiler import ir
from bpm.compiler.errors import BpmError, BpmErrors, BpmModelError, BpmNameError, BpmSyntaxError
from bpm.compiler.pipeline import to_ir, to_ir_with_warnings

HERE = Path(__file__).parent
BAD = sorted((HERE / "bad").glob("*.bpm"))
MODELS = sorted((HERE.parent / "models").glob("*.bpm"))
REGEN = os.environ.get("BPM_REGEN_GOLDEN") == "1"


def rendered_error(path: Path) -> str:
    name = f"tests/bad/{path.name}"
    with pytest.raises(BpmError) as info:
        to_ir(path.read_text(), name)
    return info.value.render() + "\n"


def test_there_are_enough_bad_inputs():
    assert len(BAD) >= 25


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_input_message(path: Path):
    got = rendered_error(path)
    expected = path.with_suffix(".err")
    if REGEN:
        expected.write_text(got)
    assert got == expected.read_text()


@pytest.mark.parametrize(
    "stem, cls",
    [
        ("syntax_missing_model", BpmSyntaxError),
        ("unknown_state_in_output", BpmNameError),
        ("duplicate_energy", BpmNameError),
        ("slice_out_of_range", BpmModelError),
        ("two_absorbing_states", BpmModelError),
        ("several_errors", BpmErrors),
    ],
)
def test_error_classes(stem: str, cls: type):
    with pytest.raises(cls):
        to_ir((HERE / "bad" / f"{stem}.bpm").read_text())


def test_all_errors_of_a_file_are_reported_together():
    with pytest.raises(BpmError) as info:
        to_ir((HERE / "bad" / "several_errors.bpm").read_text())
    messages = [d.message for d in info.value.diagnostics]
    assert len(messages) == 4
    lines = [d.span.line for d in info.value.diagnostics]
    assert lines == sorted(lines)


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_ir_golden(path: Path):
    model = to_ir(path.read_text(), path.name)
    got = ir.format_model(model) + "\n"
    expected = HERE / "golden" / f"{path.stem}.ir.txt"
    if REGEN:
        expected.parent.mkdir(exist_ok=True)
        expected.write_text(got)
    assert got == expected.read_text()


def test_shipped_models_have_no_warnings():
    for path in MODELS:
        _, warnings = to_ir_with_warnings(path.read_text(), path.name)
        assert warnings.items == [], path


def test_unused_declarations_warn():
    text = (
        "model m\nsequence x: dna[10]\nenergy G\nparam k > 0\nparam unused\n"
        "kinetic { a <-> b : k, 1 }\noutput t = P(a)\n"
    )
    model, warnings = to_ir_with_warnings(text, "m.bpm")
    messages = [w.message for w in warnings.items]
    assert messages == [
        "'G' is declared but never used",
        "'unused' is declared but never used",
        "sequence 'x' is declared but no energy reads it",
    ]
    assert warnings.items[0].span.line == 3


def test_lac_ir():
    model = to_ir((HERE.parent / "models" / "lac.bpm").read_text())
    assert model.kind == "thermodynamic"
    assert model.states == ("empty", "crp", "rnap", "crp_rnap")
    g_c = model.energy("G_C")
    assert (g_c.kind, g_c.start, g_c.stop, g_c.width) == ("matrix", 1, 27, 26)
    assert model.thermo_states[3].energy == ir.LinearForm.of({"G_C": 1, "G_R": 1, "G_I": 1})
    assert model.param("t_sat").positive
    assert model.kT == pytest.approx(0.616, abs=1e-3)


def test_reversible_shorthand_and_log_rates():
    model = to_ir(
        "model m param k > 0 param s = 2\nenergy G\n"
        "kinetic { a <-> b : k * s^2 * exp(-G/2), sqrt(k) }\noutput t = P(b)"
    )
    forward, reverse = model.transitions
    assert (forward.source, forward.target, reverse.source, reverse.target) == ("a", "b", "b", "a")
    assert dict(forward.rate.log_rate.terms) == {"G": -0.5, "log:k": 1.0, "log:s": 2.0}
    assert dict(reverse.rate.log_rate.terms) == {"log:k": 0.5}


def test_units_and_temperature():
    model = to_ir(
        "model m temperature 25 C\nenergy G = -1.5 kcal/mol\nenergy H init 2 kT\n"
        "thermodynamic { e : 0  b : G + H }\noutput t = P(b)"
    )
    assert model.temperature_kelvin == pytest.approx(298.15)
    assert model.energy("G").value == pytest.approx(-1.5 / model.kT)
    assert model.energy("H").init == 2.0 and not model.energy("H").fixed


def test_custom_alphabet_and_no_sequence_models():
    model = to_ir(
        'model m sequence s: "01"[8]\nenergy G = neighbor(s[0:8])\n'
        "thermodynamic { e : 0  b : G }\noutput t = P(b)"
    )
    assert model.sequence.alphabet.letters == "01"
    assert model.energy("G").kind == "neighbor"
    pure = to_ir((HERE.parent / "models" / "michaelis_menten.bpm").read_text())
    assert pure.sequence is None and pure.kind == "kinetic"


def test_positions_number_the_letters_without_a_zero():
    model = to_ir((HERE.parent / "models" / "lac.bpm").read_text())
    numbering = model.sequence.numbering
    assert (numbering.first, numbering.last, numbering.reference) == (-75, -1, "TSS")
    assert [numbering.number(i) for i in (0, 1, 74)] == [-75, -74, -1]  # x[1:27] is -74..-49
    splice = to_ir((HERE.parent / "models" / "mpsa.bpm").read_text()).sequence.numbering
    assert [splice.label(i) for i in range(9)] == "-3 -2 -1 +1 +2 +3 +4 +5 +6".split()
    assert all(splice.index(splice.number(i)) == i for i in range(9))
    residues = to_ir((HERE.parent / "models" / "gb1.bpm").read_text()).sequence.numbering
    assert residues.reference is None and residues.label(0) == "2" and residues.number(54) == 56
    plain = to_ir("model m sequence x: dna[4]\nenergy G = matrix(x[0:4])\n"
                  "thermodynamic { e : 0  b : G }\noutput t = P(b)")  # fmt: skip
    assert plain.sequence.numbering is None
    # the IR refuses what the checker refuses, whoever builds it
    for first, last in ((0, 3), (3, 1)):
        with pytest.raises(ValueError):
            ir.Numbering(first, last)
    with pytest.raises(ValueError, match="numbers 3 letters, not 4"):
        ir.SequenceDecl("x", ir.DNA, 4, ir.Numbering(-1, 2), span=plain.sequence.span)


def test_a_file_without_positions_keeps_its_hash():
    # numbering is left out of the IR dump when absent, so a model file without it has
    # the hash it had before positions existed, and fits saved then still load
    from bpm.compiler.codegen_header import model_hash

    text = (HERE.parent / "models" / "lac.bpm").read_text()
    bare = text.replace(" positions -75 to -1 relative to TSS", "")
    assert "numbering" not in ir.dump(to_ir(bare)) and "numbering" in ir.dump(to_ir(text))
    before = "9caec48e71fc4433f643c92801e3722893a04d49d551a9f9d8c44a2f9cb50caf"  # lac, no positions
    assert model_hash(to_ir(bare)) == before != model_hash(to_ir(text))
