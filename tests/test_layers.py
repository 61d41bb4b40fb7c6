"""The package's layers: cheap imports stay cheap, and the compiler's modules form no cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import bpm.compiler

COMPILER = Path(bpm.compiler.__file__).parent
HEAVY = ("lark", "networkx", "sympy", "torch", "numpy", "matplotlib")


def _loaded_after(statement: str) -> list[str]:
    """The heavy top-level packages in ``sys.modules`` after ``statement``, in a fresh process."""
    probe = (
        f"{statement}\nimport sys\nprint(' '.join(sorted(m for m in sys.modules if '.' not in m)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return sorted(set(out.split()) & set(HEAVY))


@pytest.mark.parametrize("statement", ["import bpm.compiler.errors", "import bpm.compiler"])
def test_importing_the_errors_loads_no_heavy_package(statement):
    assert _loaded_after(statement) == []


def test_the_front_door_names_load_on_first_use():
    from bpm.compiler import compile, derive, load, loader, pipeline, to_ast, to_ir

    assert (compile, derive, to_ast, to_ir) == (
        pipeline.compile,
        pipeline.derive,
        pipeline.to_ast,
        pipeline.to_ir,
    )
    assert load is loader.load
    assert set(bpm.compiler.__all__) <= set(dir(bpm.compiler))
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        bpm.compiler.nonsense  # noqa: B018


def _module_name(path: Path) -> str:
    parts = ("bpm", "compiler", *path.relative_to(COMPILER).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in COMPILER.rglob("*.py")}


def _imports(name: str) -> set[str]:
    """The ``bpm.compiler`` modules one module imports, inside functions too."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    # A package's own __init__ re-exports lazily; only module-to-module edges count.
    return {m for m in found if m in MODULES} - {name, "bpm.compiler"}


def test_the_compiler_modules_import_each_other_without_cycles():
    graph = {name: _imports(name) for name in MODULES if name != "bpm.compiler"}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            cycle = path[path.index(name) :] + (name,)
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for target in sorted(graph.get(name, ())):
            visit(target, path + (name,))
        done.add(name)

    for name in sorted(graph):
        visit(name, ())


ROOT = Path(__file__).parent.parent


def test_the_import_contracts_hold():
    """`lint-imports` (pyproject's [tool.importlinter]): bpm.cli > bpm.runtime > bpm.compiler >
    bpm.grammar, the compiler never imports the runtime, no cycles inside a package; run as
    `make lint` runs it, on the package laid out as installed (.ci/lint_imports.py)."""
    if not Path(sys.executable).with_name("lint-imports").exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    script = str(ROOT / ".ci" / "lint_imports.py")
    done = subprocess.run(
        [sys.executable, script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_the_command_line_lives_above_the_compiler():
    """The `bpm` command is bpm.cli; the compiler has no command-line module that could
    reach into the runtime."""
    import bpm.cli

    assert not (COMPILER / "cli.py").exists()
    assert bpm.cli.main.__module__ == "bpm.cli.main"
