"""Random command lines over every subcommand (issue 15): zero tracebacks, and every
refusal is one line that names the option, file or command it is about.

Each case draws a subcommand, its positional arguments (good and bad files) and a
handful of its flags, each with a valid or an invalid value, and calls ``main`` in
process. A case ends one of three ways, each counted: success (exit 0), a clean refusal
(exit 1 with one ``NAME: error:`` line, or a usage error: exit 2 with one ``bpm ...:
error:`` line), or a failure (any other exception: a traceback). Seeded, so a failure
is a command line to paste. Fits are kept tiny (``--steps 2 --polish 0`` unless the case
draws other values), so the few command lines that are valid through and through run fast.
"""

from __future__ import annotations

import contextlib
import io
import random
import shlex
from pathlib import Path

import pytest

from bpm.cli import main

ROOT = Path(__file__).parent.parent
SIMPLE = str(ROOT / "models" / "simple_repression.bpm")
LAC = str(ROOT / "models" / "lac.bpm")
KINETIC = str(ROOT / "models" / "open_complex.bpm")
BAD_MODEL = str(ROOT / "tests" / "bad" / "unknown_state_in_output.bpm")
CASES = 500


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """Good and bad inputs: a tiny simulated table, a truncated one, an empty file, a fit
    directory, a folder that is not one, a missing path."""
    root = tmp_path_factory.mktemp("fuzz")
    data = root / "sim.csv"
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["simulate", SIMPLE, "-o", str(data), "--n", "300", "--bins", "3"]) == 0
        fit_dir = root / "fit"
        argv = ["fit", SIMPLE, str(data), "--quiet", "--steps", "2", "--polish", "0"]
        assert main([*argv, "--no-plots", "-o", str(fit_dir)]) == 0
    text = data.read_text()
    (root / "truncated.csv").write_text(text[: len(text) // 3])
    (root / "empty.csv").write_text("")
    (root / "other").mkdir()
    (root / "other" / "notes.txt").write_text("not a fit")
    (root / "seqs.txt").write_text(text.splitlines()[1].split(",")[0] + "\nACGT\n")
    (root / "gates.txt").write_text("-3\n-1\n")
    return {
        "data": str(data),
        "truncated": str(root / "truncated.csv"),
        "empty": str(root / "empty.csv"),
        "fit": str(fit_dir),
        "other": str(root / "other"),
        "missing": str(root / "missing.csv"),
        "seqs": str(root / "seqs.txt"),
        "gates": str(root / "gates.txt"),
        "truth": str(root / "sim.truth.json"),
        "root": str(root),
    }


def fit_flags(f: dict[str, str]) -> dict[str, list[str]]:
    """Each ``bpm fit`` flag with values to draw from, valid and invalid."""
    return {
        "--steps": ["2", "0", "-1", "x", "1.5"],
        "--polish": ["0", "2", "-1", "x"],
        "--device": ["cpu", "gpu", "mps", "cuda", "cuda:1", "", "CPU"],
        "--init": [
            "G_P.offset=-1kcal/mol",
            "G_R.offset=2kJ/mol",
            "r_max=-1",
            "r_max=nan",
            "r_max=1e400",
            "x",
            "=1",
            "G_P=1",
            "nope=1",
            "r_max=2kT",
            "mu_R=1",
        ],
        "--fix": ["r_max", "nope", "G_P", "G_P.offset"],
        "--lr": ["0.01", "0", "-1", "nan", "inf", "x"],
        "--patience": ["1", "0", "-3"],
        "--eval-every": ["1", "0", "-1"],
        "--hidden": ["0", "1", "-1", "x"],
        "--link": ["affine", "flexible", "probit"],
        "--gates": ["-3,-1", "x", "-1,-3", f["gates"], f["truth"], f["missing"], "1"],
        "--learn-slope": [],
        "--model-output": ["t", "nope", ""],
        "--stream": [],
        "--distributed": ["0", "1", "-1", "x"],
        "--batch-size": ["64", "0", "-1"],
        "--epochs": ["1", "0", "-2"],
        "--seed": ["3", "-1", "x"],
        "--threads": ["1", "0", "-1"],
        "--starts": ["1", "0", "-1"],
        "--bootstrap": ["0", "-1", "x"],
        "--stop": ["validation", "training", "never"],
        "--counts": ["ct_0,ct_1,ct_2", "ct_0", "nope,ct_1", "ct_2,ct_1,ct_0", ","],
        "--count-prefix": ["ct_", "n_", ""],
        "--split-column": ["set", "nope", "x"],
        "--sequence-column": ["x", "nope", "set"],
        "--gauge": ["wild-type", "zero-mean", "other"],
        "--wild-type": ["ACGT", "A" * 75, "N" * 75],
        "--uncertainty": [],
        "--cache-dir": [f["root"], f["missing"] + "/deeper"],
        "-o": [f["root"] + "/out", f["other"], f["data"]],
        "--quiet": [],
    }


def simulate_flags(f: dict[str, str]) -> dict[str, list[str]]:
    return {
        "--n": ["50", "0", "-5", "x", "1"],
        "--bins": ["3", "0", "1", "-1", "x"],
        "--reads": ["0", "-1", "80", "x"],
        "--noise": ["0.5", "-1", "0", "nan"],
        "--mutation-rate": ["0.1", "-0.1", "1.5", "nan", "1"],
        "--params": [f["fit"], f["truth"], f["missing"], f["data"], f["other"]],
        "--wild-type": ["ACGT", "A" * 75, f["data"], f["missing"], "XYZ" * 25],
        "--floor": ["0.1", "-1", "nan"],
        "--background": ["0.1", "-0.1", "1.5"],
        "--measurement-from": [f["fit"], f["other"], f["missing"]],
        "--seed": ["1", "-1", "x"],
    }


def draw(rng: random.Random, f: dict[str, str]) -> list[str]:
    """One random command line."""
    models = [SIMPLE, SIMPLE, LAC, KINETIC, BAD_MODEL, f["missing"], f["data"], f["other"]]
    tables = [f["data"], f["data"], f["data"], f["truncated"], f["empty"], f["missing"],
              f["other"], SIMPLE]  # fmt: skip
    command = rng.choice(["fit", "fit", "fit", "simulate", "simulate", "predict", "check",
                          "compile", "show", "graph", "bogus"])  # fmt: skip
    out = f["root"] + "/" + rng.choice(["o.csv", "o.tsv.gz", "o.xlsx", "o", "o.svg", "o.dot"])
    if command == "fit":
        argv = ["fit", rng.choice(models), rng.choice(tables)]
        flags = fit_flags(f)
        argv += ["--steps", "2", "--polish", "0", "--no-plots", "--quiet"]
    elif command == "simulate":
        argv = ["simulate", rng.choice(models), "-o", out, "--n", "60"]
        flags = simulate_flags(f)
    elif command == "predict":
        seqs = rng.choice([f["seqs"], "ACGT", "A" * 75, "", f["missing"], f["data"], "a,c"])
        argv = ["predict", rng.choice([f["fit"], f["other"], f["missing"], f["data"]]), seqs]
        flags = {"-o": [out, f["other"], "-"]}
    elif command == "check":
        argv = ["check", *rng.sample(models, rng.randint(0, 3))]
        flags = {}
    elif command in ("compile", "show"):
        argv = [command, rng.choice(models)]
        flags = {"--tree-budget": ["1", "0", "-1", "x", "1000"]}
        if command == "compile":
            flags |= {"--emit": ["ast", "ir", "sympy", "latex", "torch", "llvm"], "-o": [out]}
    elif command == "graph":
        argv = ["graph", rng.choice(models), "-o", rng.choice([out, f["root"] + "/g.dot"])]
        flags = {"--trees": ["open", "closed", "nope", ""]}
    else:
        return ["bogus", *rng.sample(models, 1)]
    for flag in rng.sample(sorted(flags), min(len(flags), rng.randint(0, 4))):
        argv += [flag, rng.choice(flags[flag])] if flags[flag] else [flag]
    return argv


def run(argv: list[str]) -> tuple[str, str]:
    """``(outcome, stderr)``: ``ok``, ``refused`` (exit 1), ``usage`` (exit 2) or
    ``traceback`` (anything else escaping ``main``)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as stop:
            code = stop.code
        except Exception as error:  # noqa: BLE001 - what the fuzz hunts for
            import traceback

            return "traceback", "".join(traceback.format_exception(error))
    return {0: "ok", 1: "refused", 2: "usage"}.get(code, f"exit {code}"), err.getvalue()


def one_line_refusal(outcome: str, stderr: str) -> bool:
    """A refusal is one ``NAME: error:`` line (model errors may add their source line and
    caret below it) naming a file, an option or the command, never ``<input>``."""
    errors = [line for line in stderr.splitlines() if ": error: " in line]
    if len(errors) < 1 or errors[0].startswith("<input>"):
        return False
    if outcome == "usage":
        return len(errors) == 1 and errors[0].startswith("bpm")
    name = errors[0].split(": error: ")[0]
    return name.startswith(("-", "bpm", "/")) or Path(name.split(":")[0]).suffix != ""


def test_random_command_lines_never_traceback(files, monkeypatch):
    fuzz(files, monkeypatch, seed=15, cases=CASES)


@pytest.mark.slow
def test_many_more_random_command_lines_never_traceback(files, monkeypatch):
    for seed in (1, 2, 3, 4):
        fuzz(files, monkeypatch, seed=seed, cases=CASES)


def fuzz(files, monkeypatch, seed: int, cases: int) -> None:
    """Run ``cases`` command lines drawn with ``seed``; fail listing those that failed."""
    monkeypatch.setenv("BPM_STREAM_THRESHOLD_BYTES", str(10**9))
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    bad = []
    for _ in range(cases):
        argv = draw(rng, files)
        outcome, stderr = run(argv)
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome == "traceback" or (outcome in ("refused", "usage")
                                      and not one_line_refusal(outcome, stderr)):  # fmt: skip
            bad.append(f"bpm {shlex.join(argv)}\n{stderr.strip()[-800:]}")
    print(f"fuzz seed {seed}: {cases} command lines: {counts}")  # the closing note's numbers
    assert not bad, f"{len(bad)} of {cases} command lines failed:\n\n" + "\n\n".join(bad[:8])
    assert counts.get("ok", 0) > 0 and counts.get("refused", 0) > cases // 4
