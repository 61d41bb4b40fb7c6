"""docs/data.md's Python blocks run as written from the repository root, and print what
their comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
PYTHON = re.compile(r"```python\n(.*?)```", re.DOTALL)


def test_data_guide_runs_as_written(monkeypatch):
    monkeypatch.chdir(ROOT)
    blocks = PYTHON.findall((ROOT / "docs" / "data.md").read_text())
    assert len(blocks) == 3
    for block in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, "data.md", "exec"), {})  # noqa: S102 -- our own docs
        printed = out.getvalue()
        for comment in re.findall(r"# (.*)", block):
            expected = comment.split("...")[0].strip()
            if comment.startswith(("<input>", "{")):
                assert expected in printed, (expected, printed)
