"""A long fit says what it is doing after the optimizer's bar: one line on stderr per
phase (polish, evaluation, identifiability, uncertainty, writing, plotting, the page),
in the order they run, and none when quiet."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpm.cli import main
from bpm.runtime.progress import phase

ROOT = Path(__file__).parent.parent
SIMPLE = str(ROOT / "models" / "simple_repression.bpm")
PHASES = ("polish", "evaluating", "identifiability", "uncertainty", "writing", "plotting",
          "report")  # fmt: skip


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "sim.csv"
    assert main(["simulate", SIMPLE, "-o", str(out), "--n", "400", "--bins", "4"]) == 0
    return out


def phase_lines(err: str) -> list[str]:
    """The phase lines of a run's stderr (the bar's carriage returns split off)."""
    lines = [part.strip() for line in err.splitlines() for part in line.split("\r")]
    return [line for line in lines if line.split(":")[0] in PHASES]


def test_every_phase_is_named_in_order(table, tmp_path, capsys):
    flags = ["--steps", "3", "--polish", "5", "--uncertainty", "--identifiability", "on"]
    assert main(["fit", SIMPLE, str(table), "-o", str(tmp_path / "fit"), *flags]) == 0
    shown = phase_lines(capsys.readouterr().err)
    assert [line.split(":")[0] for line in shown] == list(PHASES), shown
    assert "at most 5 iterations" in shown[0]
    assert shown[4] == f"writing: {tmp_path / 'fit'}/ (summary.json, params/, model.py, model.pt)"
    assert shown[5] == "plotting: every figure into plots/ (png)"


def test_quiet_fits_and_fits_without_plots_say_less(table, tmp_path, capsys):
    flags = ["--steps", "3", "--polish", "5"]
    assert main(["fit", SIMPLE, str(table), "-o", str(tmp_path / "a"), *flags, "--quiet"]) == 0
    assert phase_lines(capsys.readouterr().err) == []
    assert main(["fit", SIMPLE, str(table), "-o", str(tmp_path / "b"), *flags, "--no-plots"]) == 0
    names = [line.split(":")[0] for line in phase_lines(capsys.readouterr().err)]
    assert names == ["polish", "evaluating", "writing", "report"]


def test_a_phase_line_is_flushed_to_stderr(capsys):
    phase(True, "polish", "float64 L-BFGS")
    phase(False, "plotting", "never shown")
    assert capsys.readouterr() == ("", "polish: float64 L-BFGS\n")
