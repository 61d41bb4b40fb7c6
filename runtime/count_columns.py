"""The count columns of a sort-seq table: which they are, in which bin order, and the
read counts they hold, checked.

Columns are named (``count_columns``, each once) or found by their prefix (``ct_0``,
``ct_1``, ...): two columns for one bin (``ct_1`` and ``ct_01``) and a gap in the
numbering (``ct_0``, ``ct_2``) are errors, since either usually means a column was
misnamed or lost. A count column of dates, times, true/false or categories is refused by its type.
Counts must be whole, non-negative numbers; a count, or a row's total, above
:data:`MAX_READS` (2^53, the largest whole number a float64 holds exactly; more reads
than any experiment has) is refused with its row instead of wrapping around.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bpm.compiler.errors import BpmDataError

#: The most reads one cell, or one row in all, may hold.
MAX_READS = 2**53


def find_count_columns(
    header: Sequence[str], count_columns: Sequence[str] | None, count_prefix: str
) -> list[str]:
    """The count columns in bin order: ``count_columns`` (checked to exist, each named
    once), or every ``<count_prefix><k>`` column of ``header`` sorted by ``k``."""
    header = [str(c) for c in header]
    if count_columns is not None:
        count_columns = [str(c) for c in count_columns]
        twice = sorted({c for c in count_columns if count_columns.count(c) > 1})
        if twice:
            raise BpmDataError(
                f"count column(s) {twice} named twice in the count columns; each bin's reads "
                "would be counted twice"
            )
        missing = [c for c in count_columns if c not in header]
        if missing:
            raise BpmDataError(f"count column(s) {missing} not in the table; columns are {header}")
        if not count_columns:
            raise BpmDataError("no count columns named (an empty list)")
        return list(count_columns)
    pattern = re.compile(re.escape(count_prefix) + r"([0-9]+)$")
    found = sorted((int(m.group(1)), c) for c in header if (m := pattern.match(c)))
    if not found:
        raise BpmDataError(
            f"no count columns named '{count_prefix}<bin>' in the table; columns are "
            f"{header[:20]} (name them with count_columns=[...] or --counts)"
        )
    by_bin: dict[int, list[str]] = {}
    for k, c in found:
        by_bin.setdefault(k, []).append(c)
    clash = [names for names in by_bin.values() if len(names) > 1]
    if clash:
        raise BpmDataError(
            f"columns {' and '.join(clash[0])} are both bin {_bin(clash[0][0], count_prefix)}; "
            "rename one, or name the count columns in bin order with --counts"
        )
    bins = sorted(by_bin)
    gaps = sorted(set(range(bins[0], bins[-1] + 1)) - set(bins))
    if gaps:
        absent = ", ".join(f"{count_prefix}{k}" for k in gaps[:5])
        absent += f" and {len(gaps) - 5} more" if len(gaps) > 5 else ""
        raise BpmDataError(
            f"the count columns skip {len(gaps)} bin(s): {absent} not in the table (found "
            f"{[by_bin[k][0] for k in bins][:12]}); if that is intended, name the count "
            "columns in bin order with count_columns=[...] or --counts"
        )
    return [by_bin[k][0] for k in bins]


def _bin(column: str, prefix: str) -> int:
    return int(column[len(prefix) :])


def non_count_types(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, str]:
    """The count columns that hold dates, durations, true/false or categories, with
    their type (pandas would turn dates into nanoseconds)."""
    out = {}
    for column in columns:
        dtype = frame[column].dtype
        kind = getattr(dtype, "kind", "O")
        if kind in "mMb" or isinstance(dtype, pd.CategoricalDtype | pd.DatetimeTZDtype):
            out[column] = str(dtype)
    return out


def count_values(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """The ``columns`` as float64 ``[N, B]``; NaN where a value is missing or not a number."""
    out = np.empty((len(frame), len(columns)))
    for j, column in enumerate(columns):
        values = frame[column]
        if getattr(values.dtype, "kind", "O") not in "iuf":
            values = pd.to_numeric(values.astype(object), errors="coerce")
        out[:, j] = np.asarray(values, dtype=float) if len(values) else []
    return out


def check_counts(
    frame: pd.DataFrame,
    columns: Sequence[str],
    problems,
    first_row: int = 0,
    max_count: int | None = None,
) -> np.ndarray:
    """The ``columns`` as ``int64[N, B]`` read counts (0 where bad); missing, non-numeric
    or infinite, negative and fractional counts, counts over ``max_count`` (default
    :data:`MAX_READS`) and rows whose reads total more than :data:`MAX_READS` are
    recorded in ``problems`` (a :class:`~bpm.runtime.data.RowProblems`)."""
    limit = MAX_READS if max_count is None else min(int(max_count), MAX_READS)
    wrong = non_count_types(frame, columns)
    for column, dtype in wrong.items():
        problems.column("bad read counts", f"count column '{column}' holds {dtype} values, "
                        "not read counts")  # fmt: skip
    usable = [c for c in columns if c not in wrong]
    with np.errstate(invalid="ignore", over="ignore"):
        raw = np.zeros((len(frame), len(columns)))
        raw[:, [list(columns).index(c) for c in usable]] = count_values(frame, usable)
        finite = np.isfinite(raw)
        missing = ~finite  # NaN (missing, not a number) or infinite
        negative = finite & (raw < 0)
        fractional = finite & ~negative & (raw != np.round(raw))
        large = finite & (raw > limit)
        bad = missing | negative | fractional | large
        total = np.where(bad, 0.0, raw).sum(1)
        too_many = ~bad.any(1) & (total > MAX_READS)
    group = "bad read counts"
    problems.add(group, "missing or non-numeric counts in {rows}", missing.any(1), first_row)
    problems.add(group, "negative counts in {rows}", negative.any(1), first_row)
    problems.add(group, "fractional counts in {rows}", fractional.any(1), first_row)
    problems.add(group, f"read counts over {limit} in {{rows}}", large.any(1), first_row)
    text = f"more than {MAX_READS} reads in one row in {{rows}}"
    problems.add(group, text, too_many, first_row)
    return np.where(bad | too_many[:, None], 0, raw).astype(np.int64)
