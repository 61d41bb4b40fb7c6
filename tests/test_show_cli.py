"""`bpm show` (issue 15): the partition function printed once, P(s) = w(s)/Z, and no torch.

``compiler/show.py`` prints through :func:`bpm.compiler.printing.closed_form_lines`, and
the parameter layout it reads no longer imports sympy's TorchPrinter (which imports torch).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bpm.cli import main

ROOT = Path(__file__).parent.parent
LAC = str(ROOT / "models" / "lac.bpm")
KINETIC = str(ROOT / "models" / "open_complex.bpm")


def test_show_prints_the_partition_function_once(capsys):
    assert main(["show", LAC]) == 0
    out = capsys.readouterr().out
    assert out.count("exp(-G_C - G_I - G_R)") == 2  # in w(crp_rnap) and in Z, nowhere else
    assert "  P(s) = w(s)/Z for every state s" in out
    assert "  t = t_sat * (P(rnap) + P(crp_rnap))" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["show", LAC],
        ["show", KINETIC],
        ["compile", "--emit", "sympy", KINETIC],
        ["compile", "--emit", "latex", LAC],
    ],
    ids=lambda argv: " ".join(a for a in argv if not a.endswith(".bpm")),
)
def test_reading_commands_import_no_torch(argv):
    """Commands that only print text about a model start fast: none of them loads torch
    (``check`` and ``--emit ir``: tests/test_cli_outputs.py)."""
    probe = (
        "import sys, io, contextlib\nfrom bpm.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()): assert main({argv!r}) == 0\n"
        "print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
