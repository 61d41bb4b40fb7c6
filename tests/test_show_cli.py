"""`bpm show` (issue 15): the partition function printed once, P(s) = w(s)/Z, and no torch.

Both need compiler/show.py and codegen_layout.py (H1's files) to use
:func:`bpm.compiler.printing.closed_form_lines` and to import no torch; until then they
are strict expected failures, so they fail the run the moment they pass and the marks go.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bpm.cli import main

ROOT = Path(__file__).parent.parent
LAC = str(ROOT / "models" / "lac.bpm")
PENDING = pytest.mark.xfail(
    strict=True,
    reason="issue 15, open: compiler/show.py does not yet print through "
    "printing.closed_form_lines, and imports torch through codegen_writer",
)


@PENDING
def test_show_prints_the_partition_function_once(capsys):
    assert main(["show", LAC]) == 0
    out = capsys.readouterr().out
    assert out.count("exp(-G_C - G_I - G_R)") == 2  # in w(crp_rnap) and in Z, nowhere else
    assert "  P(s) = w(s)/Z for every state s" in out
    assert "  t = t_sat * (P(rnap) + P(crp_rnap))" in out


@PENDING
def test_show_imports_no_torch():
    probe = (
        "import sys, io, contextlib\nfrom bpm.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()): main(['show', {LAC!r}])\n"
        "print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
