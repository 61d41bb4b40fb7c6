"""bpm.compiler: ``.bpm`` text to closed forms and PyTorch modules.

The errors load with the package; the stages (``compile``, ``derive``, ``load``,
``to_ast``, ``to_ir``) load on first use (module ``__getattr__``), so importing
``bpm.compiler.errors``, as the runtime does, does not import lark, networkx or sympy.
"""

from __future__ import annotations

from importlib import import_module

from .errors import BpmDataError, BpmError, BpmModelError, BpmNameError, BpmSyntaxError, Span

# Public name -> the submodule that defines it, imported when the name is first read.
_WHERE = {
    "compile": "pipeline",
    "derive": "pipeline",
    "load": "loader",
    "to_ast": "pipeline",
    "to_ir": "pipeline",
}

__all__ = [
    "BpmDataError",
    "BpmError",
    "BpmModelError",
    "BpmNameError",
    "BpmSyntaxError",
    "Span",
    "compile",
    "derive",
    "load",
    "to_ast",
    "to_ir",
    "__version__",
]


def __getattr__(name: str):
    if name == "__version__":  # one version, the installed distribution's: bpm.__version__
        from bpm import __version__

        return __version__
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
