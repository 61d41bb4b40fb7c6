"""Bad rows and columns of a count table, gathered over the whole table (read whole or
in chunks) and raised as one :class:`~bpm.compiler.errors.BpmDataError`: a line per
group of problems, each naming the first five bad rows (0-based, header excluded) and
how many there are.

>>> problems = RowProblems()
>>> problems.add("bad read counts", "negative counts in {rows}", [False, True], first_row=10)
>>> print(problems.error().diagnostics[0].message)
bad read counts: negative counts in 1 row (11; 0-based data rows, header excluded)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bpm.compiler.errors import BpmDataError, Diagnostic

SHOWN = 5  # rows (and values) named in an error message
_KEPT = 20  # distinct bad values kept per problem


def format_rows(rows: Sequence[int] | np.ndarray, first_row: int = 0, count: int | None = None):
    """``3 rows (17, 42, 99; 0-based data rows, header excluded)`` for an error message.

    ``rows`` index a chunk that starts at data row ``first_row`` of the table; ``count``
    is how many bad rows there are in all (default ``len(rows)``); the first five are named.
    """
    rows = np.asarray(rows, dtype=np.int64)[:SHOWN] + first_row
    count = len(rows) if count is None else count
    shown = ", ".join(str(int(i)) for i in rows)
    more = f" and {count - len(rows)} more" if count > len(rows) else ""
    word = "row" if count == 1 else "rows"
    return f"{count} {word} ({shown}{more}; 0-based data rows, header excluded)"


@dataclass
class _Found:
    count: int = 0
    rows: list[int] | None = field(default_factory=list)  # first SHOWN; None: a column
    values: dict = field(default_factory=dict)  # distinct bad values, first seen first


def literal(text) -> str:
    """``text`` safe inside a :meth:`RowProblems.add` template (braces doubled)."""
    return str(text).replace("{", "{{").replace("}", "}}")


@dataclass
class RowProblems:
    """Bad rows and columns found so far, by problem, over one table read whole or in
    chunks.

    A check calls :meth:`add` for each problem it looks for, found or not, so that the
    message lists problems in the order the checks run whichever chunk finds them first;
    :meth:`column` records a problem of a whole column (missing, or of the wrong type).
    """

    found: dict[tuple[str, str], _Found] = field(default_factory=dict)

    def add(self, group: str, text: str, bad, first_row: int = 0, values=()) -> None:
        """Record the rows where ``bad`` (a boolean array over a chunk) is true.

        ``text`` says what is wrong, with ``{rows}`` for the rows and ``{values}`` for the
        bad values seen (``values``, one per bad row, or any iterable of them); names put
        into it go through :func:`literal`.
        """
        found = self.found.setdefault((group, text), _Found())
        rows = np.flatnonzero(bad)
        found.count += len(rows)
        found.rows.extend(int(r) + first_row for r in rows[: SHOWN - len(found.rows)])
        for value in dict.fromkeys(values):
            if len(found.values) >= _KEPT:
                break
            found.values.setdefault(value, None)

    def column(self, group: str, text: str) -> None:
        """Record a problem of a whole column (``text`` as printed, no template)."""
        self.found.setdefault((group, text), _Found(count=1, rows=None))

    def columns_bad(self) -> bool:
        """True if a whole-column problem was recorded (rows cannot be used)."""
        return any(f.rows is None for f in self.found.values())

    def __bool__(self) -> bool:
        return any(f.count for f in self.found.values())

    def error(self) -> BpmDataError | None:
        """One error, a line per group (``bad read counts: ...``), or None if all is well."""
        lines: dict[str, list[str]] = {}
        for (group, text), found in self.found.items():
            if found.rows is None:
                lines.setdefault(group, []).append(text)
            elif found.count:
                rows = format_rows(found.rows, count=found.count)
                values = sorted(found.values, key=str)
                lines.setdefault(group, []).append(text.format(rows=rows, values=values))
        if not lines:
            return None
        messages = [f"{group}: " + "; ".join(parts) for group, parts in lines.items()]
        return BpmDataError(messages[0], diagnostics=[Diagnostic(m) for m in messages])

    def raise_if_any(self) -> None:
        """Raise :meth:`error` if any row or column is bad."""
        if (error := self.error()) is not None:
            raise error
