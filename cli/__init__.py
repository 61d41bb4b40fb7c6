"""bpm.cli: the ``bpm`` command (``bpm check/compile/show/graph/fit/predict/simulate``).

It sits above both the compiler and the runtime and is the only package that imports
both for a command line: ``main`` (:mod:`bpm.cli.main`) parses, the ``run_*`` functions
of :mod:`~bpm.cli.compile_commands` and :mod:`~bpm.cli.fit_commands` do the work.
"""

from __future__ import annotations

from .main import main

__all__ = ["main"]
