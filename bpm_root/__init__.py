"""bpm: compile biophysical models of regulatory sequences and fit them to MPRA data.

``bpm.__version__`` is the installed distribution's version (pyproject.toml). The
packages load on first use (module ``__getattr__``), so ``import bpm`` alone loads
neither torch nor sympy:

- ``bpm.compiler``: ``.bpm`` text to closed forms and PyTorch modules (``load``);
- ``bpm.runtime``: fitting, simulation, reports (``fit``, ``load_fit``);
- ``bpm.cli``: the ``bpm`` command (``main``);
- ``bpm.grammar``: the language's grammar file (data only).

This file is mapped from ``bpm_root/`` by pyproject's ``package-dir``, beside the
other four; a folder named ``bpm/`` would shadow an installed bpm when run from here.
"""

from __future__ import annotations

from importlib import import_module

_PACKAGES = ("cli", "compiler", "grammar", "runtime")

__all__ = ["__version__", *_PACKAGES]


def __getattr__(name: str):
    if name == "__version__":  # read once, on first use: importlib.metadata costs ~30 ms
        globals()[name] = _installed_version()
        return globals()[name]
    if name not in _PACKAGES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return import_module(f"{__name__}.{name}")  # the import binds it here too


def _installed_version() -> str:
    """The version of the installed distribution ``bpm`` (pyproject.toml's)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bpm")
    except PackageNotFoundError:  # the folders put on sys.path by hand, not installed
        return "unknown"


def __dir__():
    return sorted(set(globals()) | set(__all__))
