"""The bpm command (bpm.cli): exit codes, where output goes, the in-process entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bpm.cli import main
from bpm.cli.main import build_parser
from bpm.compiler import __version__

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
    bpm = [sys.executable, "-m", "bpm.cli"]
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
    assert "state reduction" in (tmp_path / "big.py").read_text()
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


def test_every_subcommand_is_registered():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert set(commands) == {"check", "compile", "show", "graph", "fit", "predict", "report",
                             "simulate", "compare"}  # fmt: skip


def _fit_args(*flags: str):
    from bpm.runtime.option_flags import from_arguments

    args = build_parser().parse_args(["fit", LAC, "data.csv", *flags])
    return args, from_arguments(args)


def test_fit_flags_build_one_options_record():
    """`bpm fit` has every flag it had, and they land in FitOptions (built once, by the runtime)."""
    args, options = _fit_args()
    assert (args.report, args.plots, args.uncertainty) == (None, True, False)
    assert options.mode == "auto" and options.given == frozenset()
    args, options = _fit_args(
        "-o", "out", "--no-plots", "--uncertainty", "--seed", "3", "--device", "cpu",
        "--steps", "7", "--polish", "0", "--patience", "2", "--lr", "0.01", "--quiet",
        "--model-output", "t", "--init", "G_I=-3", "--fix", "G_I", "--sequence-column", "seq",
        "--counts", "a,b", "--count-prefix", "n_", "--split-column", "split",
    )  # fmt: skip
    assert (args.report, args.plots, args.uncertainty) == ("out", False, True)
    assert (options.seed, options.steps, options.polish, options.patience) == (3, 7, 0, 2)
    assert (options.lr, options.quiet, options.output) == (0.01, True, "t")
    assert options.init == {"G_I": -3.0} and options.fix == ("G_I",)
    assert options.data_options == {"sequence_column": "seq", "count_columns": ["a", "b"],
                                    "count_prefix": "n_", "split_column": "split"}  # fmt: skip
    _, options = _fit_args("--stream", "--batch-size", "64", "--epochs", "2", "--cache-dir", "c")
    assert (options.mode, options.batch_size, options.epochs) == ("stream", 64, 2)
    assert options.cache_dir == "c"
    _, options = _fit_args("--distributed", "3")
    assert (options.mode, options.processes) == ("distributed", 3)


def test_fit_flag_errors_are_model_errors(capsys):
    assert main(["fit", LAC, "data.csv", "--init", "G_I"]) == 1
    assert "--init: error: expects NAME=NUMBER, not 'G_I'" in capsys.readouterr().err


def test_building_the_parser_imports_no_numerical_package():
    probe = (
        "import sys\nfrom bpm.cli.main import build_parser\nbuild_parser()\n"
        "print(' '.join(m for m in ('torch', 'numpy', 'pandas', 'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
