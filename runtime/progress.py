"""What a long fit is doing, one line on stderr per phase after the optimizer's bar
(``polish: ...``, ``uncertainty: ...``, ``writing: ...``, ``plotting: ...``), so a
minute of polishing or profiling never passes in silence. Quiet fits print none."""

from __future__ import annotations

import sys


def phase(show: bool, name: str, words: str) -> None:
    """Print ``name: words`` to stderr (flushed, so it shows before the work) when ``show``.

    >>> phase(False, "polish", "float64 L-BFGS")  # quiet: nothing
    """
    if show:
        print(f"{name}: {words}", file=sys.stderr, flush=True)
