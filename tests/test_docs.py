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
