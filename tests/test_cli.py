"""The bpm command: exit codes, where output goes, and the in-process entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bpm.compiler import __version__
from bpm.compiler.cli import main

ROOT = Path(__file__).parent.parent
LAC = str(ROOT / "models" / "lac.bpm")
BAD = str(ROOT / "tests" / "bad" / "unknown_state_in_output.bpm")


def test_check_ok(capsys):
    assert main(["check", LAC, str(ROOT / "models" / "open_complex.bpm")]) == 0
    out = capsys.readouterr().out
    assert "lac.bpm: ok (thermodynamic, 4 states)" in out
    assert "open_complex.bpm: ok (kinetic, 3 states)" in out


def test_check_reports_every_bad_file_and_exits_1(capsys):
    assert main(["check", BAD, LAC, BAD]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("error: unknown state 'rnp' (did you mean 'rnap'?)") == 2
    assert "lac.bpm: ok" in captured.out


def test_missing_file_is_a_model_error(capsys, tmp_path):
    assert main(["check", str(tmp_path / "nope.bpm")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["compile"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["compile", LAC, "--emit", "llvm"])
    assert info.value.code == 2
    assert main([]) == 2


def test_emit_ast_and_ir(capsys):
    assert main(["compile", LAC, "--emit", "ast"]) == 0
    assert capsys.readouterr().out.startswith("ModelFile\n  name:")
    assert main(["compile", LAC, "--emit", "ir"]) == 0
    out = capsys.readouterr().out
    assert out == (ROOT / "tests" / "golden" / "lac.ir.txt").read_text()


def test_output_file(tmp_path, capsys):
    target = tmp_path / "lac.ir"
    assert main(["compile", LAC, "--emit", "ir", "-o", str(target)]) == 0
    assert target.read_text().startswith("model lac (thermodynamic)")
    assert capsys.readouterr().out == ""


def test_warnings_go_to_stderr(tmp_path, capsys):
    model = tmp_path / "w.bpm"
    model.write_text(
        "model w\nparam k > 0\nparam spare\nkinetic { a <-> b : k, 1 }\noutput t = P(a)\n"
    )
    assert main(["check", str(model)]) == 0
    err = capsys.readouterr().err
    assert f"{model}:3:1: warning: 'spare' is declared but never used" in err


def test_console_script_version_and_errors():
    bpm = [sys.executable, "-m", "bpm.compiler.cli"]
    done = subprocess.run([*bpm, "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.strip() == f"bpm {__version__}"
    done = subprocess.run([*bpm, "check", BAD], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "unknown_state_in_output.bpm:11:22: error: unknown state 'rnp'" in done.stderr


BIG = (
    "model big\nparam k > 0\nkinetic {\n"
    + "".join(
        f"  {a} <-> {b} : {'k' if (a, b) == ('a', 'b') else 1}, 2\n"
        for i, a in enumerate("abcdef")
        for b in "abcdef"[i + 1 :]
    )
    + "}\noutput t = P(a)\n"
)


def test_kinetic_scheme_above_the_tree_budget(tmp_path, capsys):
    model = tmp_path / "big.bpm"
    model.write_text(BIG)
    assert main(["compile", str(model), "-o", str(tmp_path / "big.py")]) == 0
    err = capsys.readouterr().err
    assert "big has 7776 spanning trees, more than the tree budget" in err
    assert "torch.linalg.solve" in (tmp_path / "big.py").read_text()
    assert main(["compile", str(model), "--emit", "sympy"]) == 1
    err = capsys.readouterr().err
    assert f"{model}: error: the kinetic scheme has 7776 spanning trees" in err
    assert main(["show", str(model)]) == 0
    assert "total spanning trees: 7776" in capsys.readouterr().out
    assert main(["compile", str(model), "--emit", "sympy", "--tree-budget", "8000"]) == 0


def test_detailed_balance_is_reported(tmp_path, capsys):
    model = tmp_path / "balanced.bpm"
    model.write_text(
        "model balanced\nenergy G_A\nparam k > 0\n"
        "kinetic {\n  empty <-> a : k * exp(-G_A), k\n}\noutput t = P(a)\n"
    )
    assert main(["compile", str(model), "-o", str(tmp_path / "m.py")]) == 0
    err = capsys.readouterr().err
    assert "detailed balance holds: this kinetic model is equivalent to a thermodynamic" in err
    assert main(["show", str(model)]) == 0
    assert "    a : G_A" in capsys.readouterr().out
