"""Run import-linter (``lint-imports``) on the package laid out as an install lays it out.

pyproject's ``package-dir`` maps the root package ``bpm`` from bpm_root/ and its
packages ``bpm.cli``, ``bpm.compiler``, ``bpm.runtime`` and ``bpm.grammar`` from
folders beside it. grimp, which builds import-linter's graph, takes only top-level
packages as roots and finds a package's modules by walking its folder, so through the
editable install it would see ``bpm`` as bpm_root/ alone (and refuse ``bpm.compiler``
as a root: its parent is a regular package). Here the files are copied (times kept, so
grimp's cache holds) into ``bpm/``, ``bpm/cli/``, ... in a temporary folder put first on
``PYTHONPATH``, and ``lint-imports`` runs from the repository root with the contracts of
pyproject.toml unchanged. ``make lint`` runs this; extra arguments go to lint-imports.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lay_out(target: Path) -> list[str]:
    """Copy every package of pyproject's ``package-dir`` to ``target`` under its dotted
    name (``bpm.compiler`` to ``target/bpm/compiler``), the root first; their names."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = setuptools["package-dir"]
    for package in sorted(mapping):  # "bpm" sorts before "bpm.cli"
        shutil.copytree(
            ROOT / mapping[package],
            target.joinpath(*package.split(".")),
            ignore=shutil.ignore_patterns("__pycache__"),
            dirs_exist_ok=True,
        )
    return sorted(mapping)


def main(argv: list[str]) -> int:
    lint = Path(sys.executable).with_name("lint-imports")
    with tempfile.TemporaryDirectory(prefix="bpm-lint-") as tmp:
        lay_out(Path(tmp))
        path = [tmp, *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        return subprocess.call([str(lint), *argv], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
