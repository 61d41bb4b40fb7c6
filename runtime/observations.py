"""What kind of measurement a table holds, and reading the kinds that are not sort-seq.

Three kinds (``--measurement``):

- ``sortseq``: read counts per sort bin (``ct_0``, ``ct_1``, ..., or three or more
  columns named with ``--counts``, dimmest first); read by :func:`bpm.runtime.data.read_dataset`.
- ``continuous``: a score per sequence in a column ``y`` (``--y-column``), with its
  standard error in ``dy`` when the table has one (``--dy-column``).
- ``counts``: two read-count columns named with ``--counts REFERENCE,SELECTED`` (input
  and selected reads of a DMS; DNA and RNA reads of an MPRA; total and included reads of
  a splicing assay). ``pair="separate"`` (the default: two sets of reads, each read in
  one or the other) or ``"nested"`` (the second counts a part of the first's reads, as
  included reads can be of the total; a row whose second count exceeds its first is
  then an error). Names do not decide it: in the shipped MPSA table ``ex_ct`` exceeds
  ``tot_ct`` on 1,480 rows, so there the two are separate read sets. A nested pair is
  stored as ``(first - second, second)``, so both are read as "reads in column 0, reads
  in column 1".

Detection (``auto``): ``--counts`` with two columns is a count pair, with more a
sort-seq; otherwise ``ct_*`` columns are a sort-seq, a ``y`` column continuous; a table
with both, or neither, is refused with the columns seen and what to pass. Nothing is
dropped without a count: rows without reads are set aside and counted, rows whose
reference count is zero but that have selected reads counted (and kept: their selected
reads still count), duplicate
sequences kept as separate measurements (each in the most held-out split any of its rows
names) and counted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bpm.compiler.errors import BpmDataError

from . import data
from .count_columns import check_counts, count_values
from .options import KINDS, PAIRS
from .row_problems import RowProblems
from .table_files import read_header


def detect_kind(
    header: Sequence[str],
    measurement: str = "auto",
    count_columns: Sequence[str] | None = None,
    count_prefix: str = "ct_",
    y_column: str = "y",
    name: str = "the table",
) -> str:
    """The measurement kind of a table with columns ``header`` (see the module text)."""
    header = [str(c) for c in header]
    if measurement != "auto":
        if measurement not in KINDS:
            raise BpmDataError(f"--measurement must be one of {['auto', *KINDS]}, not "
                               f"{measurement!r}")  # fmt: skip
        if measurement == "counts" and (count_columns is None or len(count_columns) != 2):
            raise BpmDataError(
                "a count-pair measurement needs its two columns: --counts REFERENCE,SELECTED "
                f"(for example input_ct,selected_ct); columns of {name} are {header[:20]}"
            )
        return measurement
    if count_columns is not None:
        return "counts" if len(count_columns) == 2 else "sortseq"
    pattern = re.compile(re.escape(count_prefix) + r"[0-9]+$")
    binned = [c for c in header if pattern.match(c)]
    scored = y_column in header
    if binned and not scored:
        return "sortseq"
    if scored and not binned:
        return "continuous"
    seen = f"columns of {name} are {header[:20]}"
    if binned and scored:
        raise BpmDataError(
            f"{name} has both sort-bin counts ({binned[:4]}) and a score column '{y_column}'; "
            f"say which to fit: --measurement sortseq or --measurement continuous ({seen})"
        )
    raise BpmDataError(
        f"cannot tell what {name} measures: no '{count_prefix}<bin>' sort-bin counts and no "
        f"score column '{y_column}' ({seen}); pass --counts A,B for a count pair (reference "
        "first), --counts C0,C1,C2,... for sort bins (dimmest first), or --y-column NAME "
        "for a score"
    )


def file_kind(path, options: dict) -> str:
    """The measurement kind of the table at ``path`` from its first rows (``options``:
    the data options of :func:`read_observations`)."""
    columns = options.get("count_columns")
    return detect_kind(
        read_header(path), options.get("measurement", "auto"), columns,
        options.get("count_prefix", "ct_"), options.get("y_column") or "y", str(path),
    )  # fmt: skip


def describe(summary: dict) -> str:
    """The measurement a data summary records, in words (printed as a fit starts)."""
    kind = summary.get("measurement", "sortseq")
    columns = ", ".join(summary.get("count_columns", []))
    if kind == "continuous":
        error = summary.get("error_column")
        return f"continuous (score '{summary['score_column']}'" + (
            f", standard errors '{error}')" if error else ", no standard errors)"
        )
    if kind == "counts":
        return f"counts (a {summary.get('count_pair', 'separate')} count pair: {columns})"
    return f"sortseq ({summary.get('bins', 0)} bins: {columns})"


def pair_kind(columns: Sequence[str], pair: str = "auto") -> str:
    """``separate`` or ``nested`` for the count pair ``columns`` (see the module text)."""
    if pair == "auto":
        return "separate"
    if pair not in PAIRS:
        raise BpmDataError(f"pair must be one of {['auto', *PAIRS]}, not {pair!r}")
    return pair


def read_observations(source, *, measurement: str = "auto", **options) -> data.Dataset:
    """Read any kind of table: sort-seq through :func:`~bpm.runtime.data.read_dataset`,
    continuous and count pairs here. ``options`` are read_dataset's, plus
    ``y_column``, ``dy_column`` and ``pair``."""
    if isinstance(source, data.Dataset):
        return source
    y_column = options.pop("y_column", None) or "y"
    dy_column = options.pop("dy_column", None)
    pair = options.pop("pair", None) or "auto"
    sequence_column = options.get("sequence_column", "x")
    split_column = options.get("split_column", "set")
    if isinstance(source, pd.DataFrame):
        name, frame = "<DataFrame>", source.reset_index(drop=True)
        frame.columns = [str(c) for c in frame.columns]
    else:
        name = str(source)
        frame = data.read_table(source, data.text_columns(sequence_column, split_column))
    columns = options.get("count_columns")
    kind = detect_kind(
        frame.columns, measurement, columns, options.get("count_prefix", "ct_"), y_column, name
    )
    if kind == "sortseq":
        found = data.read_dataset(frame, **options, name=name)
        found.summary["measurement"] = "sortseq"
        return found
    if kind == "continuous":
        dy_column = dy_column or ("dy" if "dy" in frame.columns else None)
        return _read_measured(frame, name, kind, (y_column, dy_column), options)
    return _read_measured(frame, name, kind, (columns, pair_kind(columns, pair)), options)


def _read_measured(frame, name: str, kind: str, what, options: dict) -> data.Dataset:
    seq_col = options.get("sequence_column", "x")
    split_col = options.get("split_column", "set")
    fractions = options.get("split_fractions", (0.6, 0.2, 0.2))
    seed = options.get("seed", 0)
    data.check_fractions(fractions)
    problems = RowProblems()
    header = [str(c) for c in frame.columns]
    wanted = [c for c in (what if kind == "continuous" else what[0]) if c is not None]
    missing = [c for c in [seq_col, *wanted] if c not in header]
    if missing:
        raise BpmDataError(f"{name}: no column(s) {missing}; columns are {header[:20]}")
    if len(frame) == 0:
        raise BpmDataError(f"{name} has no rows")
    seqs, _ = data.check_sequences(
        frame[seq_col], options.get("alphabet", "ACGT"), options.get("length"), problems
    )
    split_column = split_col if split_col in header else None
    split = None
    if split_column is not None:
        split = data.check_split(frame[split_column], split_column, problems)
    if kind == "continuous":
        obs, notes = _scores(frame, *what, problems)
        names = tuple(c for c in what if c is not None)
    else:
        obs, notes = _pair(frame, *what, problems, options.get("max_count"))
        names = tuple(what[0])
    problems.raise_if_any()
    _informative(obs, kind, names, name)
    if split is None:
        split, split_source = data.random_split(len(frame), fractions, seed)
    else:
        split_source = f"column '{split_column}'"
    keep = obs[:, 0] > 0 if kind == "continuous" else obs.sum(1) > 0
    set_aside = int((~keep).sum())
    seqs, obs, split = seqs[keep], obs[keep], split[keep]
    if len(seqs) == 0:
        raise BpmDataError(f"{name}: no row has any reads")
    duplicates, conflicts = _held_out_first(seqs, split)
    carved = None
    if split_column is not None and options.get("carve_validation", True):
        split = split.copy()
        carved = data.draw_validation(split, fractions, seed)
    sizes = {s: int((split == k).sum()) for k, s in enumerate(data.SPLITS)}
    reads = int(obs.sum()) if kind == "counts" else len(obs)
    tally = (set_aside, 0, conflicts)
    summary = data.summarize(name, len(frame), reads, names, *tally, split_source, sizes)
    summary = data.note_splits(summary, carved)
    summary.update(measurement=kind, duplicate_sequences_kept=duplicates, **notes)
    if kind == "continuous":  # no bins and no reads: sequences scored, and by which columns
        del summary["bins"], summary["count_columns"], summary["reads"]
        summary["sequences_scored"] = reads
    labels = np.array(data.SPLITS, dtype=object)[split]
    alphabet = options.get("alphabet", "ACGT")
    codes = data.encode(seqs, alphabet)
    return data.Dataset(seqs, codes, obs, labels, alphabet, names, summary, kind=kind)


def _informative(obs: np.ndarray, kind: str, names, name: str) -> None:
    """Refuse a measurement that cannot inform a fit: scores all equal, or a count
    column without a single read."""
    if kind == "continuous" and len(obs) and np.ptp(obs[:, 1]) == 0:
        raise BpmDataError(f"{name}: every '{names[0]}' is {obs[0, 1]:g}; a score that "
                           "never varies tells nothing about the sequences")  # fmt: skip
    if kind == "counts":
        empty = [c for c, total in zip(names, obs.sum(0), strict=True) if total == 0]
        if empty:
            raise BpmDataError(f"{name}: count column {empty} has no reads in any row; a "
                               "count pair needs reads in both columns")  # fmt: skip


def _scores(frame, y_column: str, dy_column: str | None, problems: RowProblems):
    """``(weight, y, dy)`` rows: y and dy must be finite numbers, dy >= 0."""
    y = count_values(frame, [y_column])[:, 0]
    problems.add("bad scores", f"missing or non-numeric '{y_column}' in {{rows}}", np.isnan(y))
    problems.add("bad scores", f"infinite '{y_column}' in {{rows}}", np.isinf(y))
    dy = np.zeros(len(y))
    if dy_column is not None:
        dy = count_values(frame, [dy_column])[:, 0]
        bad = ~np.isfinite(dy)
        problems.add("bad scores", f"missing, non-numeric or infinite '{dy_column}' in {{rows}}",
                     bad)  # fmt: skip
        problems.add("bad scores", f"negative '{dy_column}' (a standard error) in {{rows}}",
                     ~bad & (dy < 0))  # fmt: skip
    obs = np.stack([np.ones(len(y)), np.nan_to_num(y), np.nan_to_num(np.abs(dy))], axis=1)
    notes = {"score_column": y_column, "error_column": dy_column}
    finite = y[np.isfinite(y)]
    if len(finite):
        notes["score_range"] = [float(finite.min()), float(finite.max())]
    return obs, notes


def _pair(frame, columns, pair: str, problems: RowProblems, max_count=None):
    """The pair as ``(column 0 reads, column 1 reads)``; a nested pair's first column
    minus its second (the second may not exceed the first)."""
    counts = check_counts(frame, columns, problems, 0, max_count)
    notes = {"count_pair": pair}
    if pair == "nested":
        over = counts[:, 1] > counts[:, 0]
        text = f"'{columns[1]}' above '{columns[0]}' in {{rows}} (a nested pair: the second "
        text += "column counts a part of the first's reads; pass --pair separate if not)"
        problems.add("bad read counts", text, over)
        counts = np.stack([counts[:, 0] - np.minimum(counts[:, 1], counts[:, 0]), counts[:, 1]], 1)
        notes["zero_total_rows"] = int((counts.sum(1) == 0).sum())
    else:
        notes["zero_reference_rows"] = int(((counts[:, 0] == 0) & (counts[:, 1] > 0)).sum())
    return counts, notes


def _held_out_first(seqs: np.ndarray, split: np.ndarray) -> tuple[int, int]:
    """Every row of a sequence measured more than once put in the most held-out split
    any of its rows names (in place); returns the rows beyond the first of each sequence
    and the sequences that were under two splits."""
    uniq, inverse = np.unique(seqs.astype(str), return_inverse=True)
    if len(uniq) == len(seqs):
        return 0, 0
    best = np.zeros(len(uniq), dtype=np.uint8)
    np.maximum.at(best, inverse, split)
    lowest = np.full(len(uniq), 255, dtype=np.uint8)
    np.minimum.at(lowest, inverse, split)
    split[:] = best[inverse]
    return len(seqs) - len(uniq), int((best != lowest).sum())
