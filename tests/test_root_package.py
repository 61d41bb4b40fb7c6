"""The root package ``bpm`` (issue 15): ``bpm.__version__`` and lazy access to its packages.

``import bpm`` loads nothing heavy and none of the four packages; ``bpm.compiler``,
``bpm.runtime``, ``bpm.cli`` and ``bpm.grammar`` load on first use. Checked in fresh
processes, through this checkout's (editable) install and through a regular install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
HEAVY = ("lark", "matplotlib", "networkx", "numpy", "pandas", "sympy", "torch")

PROBE = f"""
import json, sys
import bpm
after_import = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r}
                      or m.startswith("bpm."))
version = bpm.__version__
from bpm.compiler import loader
report = {{
    "after_import": after_import,
    "file": bpm.__file__,
    "version": version,
    "compiler_version": bpm.compiler.__version__,
    "load_is_the_loader's": bpm.compiler.load is loader.load,
    "runtime_fit": bpm.runtime.fit.__module__,
    "cli_main": bpm.cli.main.__module__,
    "grammar": bpm.grammar.__name__,
    "listed": sorted(set(bpm.__all__) & set(dir(bpm))),
}}
try:
    bpm.nonsense
except AttributeError as error:
    report["unknown"] = str(error)
cls = bpm.compiler.load({str(ROOT / "models" / "lac.bpm")!r})
module = cls().eval()
report["t"] = float(module(module.encode(["A" * 75])))
print(json.dumps(report))
"""


def _probe(cwd: Path, env: dict | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=cwd, env=env
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _check(report: dict) -> None:
    assert report["after_import"] == []  # neither torch nor any bpm package yet
    assert report["version"] == report["compiler_version"] == VERSION
    assert report["load_is_the_loader's"]
    assert report["runtime_fit"].startswith("bpm.runtime")
    assert report["cli_main"] == "bpm.cli.main"
    assert report["grammar"] == "bpm.grammar"
    assert report["listed"] == ["__version__", "cli", "compiler", "grammar", "runtime"]
    assert report["unknown"] == "module 'bpm' has no attribute 'nonsense'"
    assert report["t"] == 0.5  # all energies zero: P(rnap) + P(crp_rnap) = 1/2, t_sat = 1


def test_import_bpm_is_cheap_and_its_packages_load_on_first_use(tmp_path):
    report = _probe(tmp_path)
    _check(report)
    assert Path(report["file"]) == ROOT / "bpm_root" / "__init__.py"


def test_the_version_is_the_distributions():
    from importlib.metadata import version

    import bpm

    assert bpm.__version__ == version("bpm") == VERSION


def test_a_regular_install_works_too(tmp_path):
    """``pip install .`` (not editable) lays out bpm/, bpm/compiler/, ... with the grammar
    file; the same probe passes against it (it comes first on the path)."""
    pytest.importorskip("setuptools", minversion="77")  # pyproject's build requirement
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for folder in setuptools["package-dir"].values():
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*pip, "--no-index", "--target", str(target), str(source)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (target / "bpm" / "grammar" / "bpm.lark").is_file()
    report = _probe(tmp_path, env={**os.environ, "PYTHONPATH": str(target)})
    _check(report)
    assert Path(report["file"]) == target / "bpm" / "__init__.py"
