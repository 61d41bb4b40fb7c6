"""Paste methods of :mod:`bpm.compiler.module_methods` into a generated class, verbatim.

The source file is read as text (``importlib.resources``), not imported, so code
generation does not load torch; each method is cut out by the line numbers
``ast`` gives it, decorators included, and written at the class's indentation.
"""

from __future__ import annotations

import ast
import functools
from importlib import resources

from .codegen_writer import Writer

SOURCE = "module_methods.py"
"""The file in this package that holds the pasted methods."""
HOLDER = "ModuleMethods"
"""The class in :data:`SOURCE` whose methods are pasted."""


@functools.cache
def method_source(name: str) -> tuple[str, ...]:
    """The lines of method ``name`` of the holder class, decorators included, dedented
    to the class body (no leading indentation on the ``def`` line)."""
    text = resources.files(__package__).joinpath(SOURCE).read_text(encoding="utf-8")
    lines = text.splitlines()
    holder = next(
        node
        for node in ast.parse(text).body
        if isinstance(node, ast.ClassDef) and node.name == HOLDER
    )
    for node in holder.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            block = lines[first - 1 : node.end_lineno]
            indent = len(block[0]) - len(block[0].lstrip())
            return tuple(line[indent:] for line in block)
    raise KeyError(f"{SOURCE} has no method {HOLDER}.{name}")


def paste_method(w: Writer, name: str, summary: str | None = None) -> None:
    """Write method ``name`` as it is in the source.

    With ``summary``, the first line of its docstring is replaced by that text (a
    model-specific one, such as the sequence length).
    """
    lines = list(method_source(name))
    if summary is not None:
        k = next(i for i, line in enumerate(lines) if line.lstrip().startswith('"""'))
        lines[k] = lines[k][: len(lines[k]) - len(lines[k].lstrip())] + f'"""{summary}'
    for line in lines:
        w.line(line)
