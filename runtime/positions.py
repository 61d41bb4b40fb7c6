"""Positions as a person reads them, on figures and in tables: the model file's numbering
(``positions -75 to -1 relative to TSS``; :func:`bpm.runtime.contract.numbering`) or,
for a model without one, the 0-based index into the sequence.

A table keeps its 0-based ``position`` (what ``energy(x) = offset + sum_p M[p, x[p]]``
reads) and gains ``numbered_position`` as its last column; a figure keeps its axis in
0-based positions and labels the ticks with the numbers. Numbers relative to a reference
are signed (``+1``, ``-10``) and have no 0 (docs/language.md, "positions").
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

#: Columns that hold 0-based positions, and the column of their numbers beside them.
NUMBERED_COLUMNS = {
    "position": "numbered_position",
    "position_i": "numbered_position_i",
    "position_j": "numbered_position_j",
}


def axis_label(numbering, what: str = "position") -> str:
    """What a position axis says (``what``: the word for the positions).

    >>> from bpm.compiler.ir import Numbering
    >>> axis_label(None), axis_label(Numbering(-75, -1, "TSS")), axis_label(Numbering(2, 56))
    ('position in sequence (0-based)', 'position relative to TSS', 'position')
    """
    if numbering is None:
        return f"{what} in sequence (0-based)"
    if numbering.reference is not None:
        return f"{what} relative to {numbering.reference}"
    return what


def label(numbering, position: int) -> str:
    """The 0-based ``position`` as a person reads it (``+1``, ``-74``, ``7``)."""
    return str(position) if numbering is None else numbering.label(int(position))


def ticks(positions: Sequence[int], numbering, step: int | None = None):
    """The ticks of a position axis: the 0-based positions among ``positions`` whose number
    is a multiple of ``step`` (default: 5 over more than 20 positions, else every one),
    and their labels.

    >>> from bpm.compiler.ir import Numbering
    >>> ticks(range(1, 27), Numbering(-75, -1, "TSS"))
    ([5, 10, 15, 20, 25], ['-70', '-65', '-60', '-55', '-50'])
    >>> ticks(range(0, 9), Numbering(-3, 6, "splice site"))[1]
    ['-3', '-2', '-1', '+1', '+2', '+3', '+4', '+5', '+6']
    >>> ticks(range(0, 25), None)[0]
    [0, 5, 10, 15, 20]
    """
    positions = [int(p) for p in positions]
    step = step or (5 if len(positions) > 20 else 1)

    def number(p: int) -> int:
        return p if numbering is None else numbering.number(p)

    shown = [p for p in positions if number(p) % step == 0]
    return shown, [label(numbering, p) for p in shown]


def set_ticks(ax, positions: Sequence[int], numbering, axis: str = "x") -> None:
    """Label a position axis of ``ax`` (drawn at 0-based positions) with the numbers."""
    shown, labels = ticks(positions, numbering)
    (ax.set_xticks if axis == "x" else ax.set_yticks)(shown, labels)
    (ax.set_xlabel if axis == "x" else ax.set_ylabel)(axis_label(numbering))


def numbered(frame: pd.DataFrame, numbering) -> pd.DataFrame:
    """``frame`` with ``numbered_position`` (and ``_i``, ``_j``) appended as last columns
    beside every 0-based position column or index; ``frame`` itself when there is no
    numbering. The position columns and the energies are unchanged.

    >>> from bpm.compiler.ir import Numbering
    >>> frame = pd.DataFrame({"A": [0.5, -0.5]}, index=pd.Index([73, 74], name="position"))
    >>> numbered(frame, Numbering(-75, -1, "TSS")).reset_index().values.tolist()
    [[73.0, 0.5, -2.0], [74.0, -0.5, -1.0]]
    """
    if numbering is None:
        return frame
    out = frame.copy()
    if out.index.name in NUMBERED_COLUMNS:
        out[NUMBERED_COLUMNS[out.index.name]] = [numbering.number(int(p)) for p in out.index]
    for column, name in NUMBERED_COLUMNS.items():
        if column in out.columns:
            out[name] = [numbering.number(int(p)) for p in out[column]]
    return out


def numbering_summary(numbering) -> dict:
    """``{"numbering": {"first", "last", "reference"}}``: how the model file numbers the
    positions (``positions -75 to -1 relative to TSS``), or empty when it does not; as
    summary.json and a simulation's truth JSON record it.

    >>> from bpm.compiler.ir import Numbering
    >>> numbering_summary(Numbering(-75, -1, "TSS")), numbering_summary(None)
    ({'numbering': {'first': -75, 'last': -1, 'reference': 'TSS'}}, {})
    """
    if numbering is None:
        return {}
    return {"numbering": {"first": numbering.first, "last": numbering.last,
                          "reference": numbering.reference}}  # fmt: skip


def site_positions(site: dict, numbering: dict | None) -> str:
    """``-74 to -49 relative to TSS (x[1:27])``, or ``1:27`` without a numbering.

    >>> site_positions({"start": 1, "stop": 27}, None)
    '1:27'
    >>> site_positions({"start": 1, "stop": 27, "numbered_first": -74, "numbered_last": -49},
    ...                {"first": -75, "last": -1, "reference": "TSS"})
    '-74 to -49 relative to TSS (x[1:27])'
    """
    sliced = f"{site.get('start')}:{site.get('stop')}"
    if not numbering or "numbered_first" not in site:
        return sliced
    signed = numbering.get("reference") is not None
    first, last = (f"{site[k]:+d}" if signed else str(site[k])
                   for k in ("numbered_first", "numbered_last"))  # fmt: skip
    where = f" relative to {numbering['reference']}" if signed else ""
    return f"{first} to {last}{where} (x[{sliced}])"
