"""What a long fit is doing, one line on stderr per phase after the optimizer's bar
(``polish: ...``, ``uncertainty: ...``, ``writing: ...``, ``plotting: ...``), so a
minute of polishing or profiling never passes in silence. Quiet fits print none.

:class:`Stopwatch` keeps how long each phase took (summary.json's ``phase_seconds``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


def phase(show: bool, name: str, words: str) -> None:
    """Print ``name: words`` to stderr (flushed, so it shows before the work) when ``show``.

    >>> phase(False, "polish", "float64 L-BFGS")  # quiet: nothing
    """
    if show:
        print(f"{name}: {words}", file=sys.stderr, flush=True)


class Stopwatch:
    """Wall seconds by phase, in the order the phases ended: :meth:`lap` closes the phase
    that ran since the previous lap (or since the stopwatch started).

    >>> clock = Stopwatch()
    >>> clock.lap("read"); clock.lap("adam"); list(clock.seconds)
    ['read', 'adam']
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        """Add the seconds since the last lap to phase ``name``."""
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self._last = now

    def rounded(self) -> dict[str, float]:
        """The seconds to the millisecond, for summary.json."""
        return {name: round(s, 3) for name, s in self.seconds.items()}


@contextmanager
def timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    """Add the wall seconds of the block to ``seconds[name]`` (a fit's ``phase_seconds``).

    >>> spent = {}
    >>> with timed(spent, "uncertainty"):
    ...     pass
    >>> list(spent)
    ['uncertainty']
    """
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
