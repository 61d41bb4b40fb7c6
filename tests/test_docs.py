"""Every model in the docs compiles: the documentation's examples stay true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bpm.compiler.pipeline import to_ir_with_warnings

DOCS = Path(__file__).parent.parent / "docs"
BLOCK = re.compile(r"```bpm\n(.*?)```", re.S)
EXAMPLES = [
    pytest.param(text, id=f"{path.stem}-{i}")
    for path in sorted(DOCS.glob("*.md"))
    for i, text in enumerate(BLOCK.findall(path.read_text()))
]


def test_language_reference_has_examples():
    assert len([e for e in EXAMPLES if e.id.startswith("language-")]) >= 9  # one per construct


@pytest.mark.parametrize("text", EXAMPLES)
def test_doc_example_compiles_without_warnings(text):
    model, warnings = to_ir_with_warnings(text, "doc.bpm")
    assert warnings.items == []
    assert model.outputs


PYTHON = re.compile(r"```python\n(.*?)```", re.S)


@pytest.mark.slow
def test_simulation_guide_runs_as_written(tmp_path, monkeypatch, capsys):
    """docs/simulation.md's Python blocks, run in order in one namespace from the repo root."""
    import numpy as np

    monkeypatch.chdir(DOCS.parent)
    blocks = PYTHON.findall((DOCS / "simulation.md").read_text())
    assert len(blocks) == 3
    namespace: dict = {}
    printed = []
    for block in blocks:
        code = compile(block.replace("/tmp/sim/", f"{tmp_path}/"), "simulation.md", "exec")
        exec(code, namespace)
        printed.append(capsys.readouterr().out.split())
    assert printed[0][1] == "20000"  # reads, as the comment says
    assert int(printed[0][0]) == len(namespace["table"])
    assert float(printed[1][0]) >= 0.95  # the recovery block's correlation
    assert "G_I" in " ".join(printed[2])  # the uncertainty summary names the parameters
    assert (tmp_path / "data.csv.gz").exists()
    u = namespace["u"]
    assert u.standard_errors["G_R"].shape == (41, 4)
    # the guide's default fit is early-stopped: no standard errors, and the words say why
    assert u.status == "not at an optimum" and "optimum" in u.why
    assert np.isnan(u.standard_errors["G_R"]).all()
