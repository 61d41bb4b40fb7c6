"""Read sort-seq count tables, check them, and encode them for fitting.

A table has one sequence column, one count column per sort bin (in bin order, dimmest
first) and optionally a split column. The default layout is MAVE-NN's (``x``,
``ct_0``..``ct_9``, ``set`` with ``training``/``validation``/``test``), the layout of
the shipped ``data/lac_sortseq_kinney2010.csv.gz``.

The checks are public so that the in-memory reader (:func:`read_dataset`) and the
chunked encoder (:func:`bpm.runtime.store.encode_file`) share them: each takes the data
row its chunk starts at (``first_row``) and records bad rows in a :class:`RowProblems`,
which names every bad row once, by its 0-based row in the whole table, and raises one
:class:`BpmDataError` after the whole table is read: missing columns, bad column types,
bad sequences, counts and split labels all in one message. Nothing is dropped
silently: rows that are set aside (no reads) or merged (duplicate sequences) are
counted in the summary, and a validation split carved from training (a split column
with training and test rows only) is recorded there too.

Files are read by :mod:`bpm.runtime.table_files` (sequences always as text), count
columns checked by :mod:`bpm.runtime.count_columns`, letters encoded by
:mod:`bpm.runtime.letters`; their public names are re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from bpm.compiler.errors import BpmDataError

from .count_columns import MAX_READS, check_counts, find_count_columns
from .letters import encode, spelling
from .row_problems import RowProblems, format_rows, literal
from .table_files import read_chunks, read_table

__all__ = [
    "MAX_READS", "SPLITS", "Dataset", "RowProblems", "check_counts", "draw_validation",
    "check_header", "check_sequences", "check_split", "encode", "find_count_columns",
    "format_rows", "random_split", "read_chunks", "read_dataset", "read_table", "summarize",
]  # fmt: skip

SPLITS = ("training", "validation", "test")
# A split's code is its index in SPLITS. When one sequence appears under several splits it
# goes to the most held-out one (the highest code), so that no sequence scored on
# validation or test data is ever trained on.
SPLIT_CODE = {name: code for code, name in enumerate(SPLITS)}
SPLIT_ALIASES = {
    **{name: name for name in SPLITS},
    **{"train": "training", "valid": "validation", "val": "validation", "dev": "validation"},
    "testing": "test",
}


@dataclass
class Dataset:
    """Unique sequences with their per-bin read counts and split labels.

    ``codes`` is ``uint8[N, L]`` (index into ``alphabet``), ``counts`` is ``int64[N, B]``
    (reads per bin, bins in order), ``split`` is a string array of ``training``,
    ``validation`` or ``test``. ``kind`` is the measurement: ``sortseq``; ``counts`` (a
    count pair, ``counts`` its two columns) or ``continuous`` (``counts`` is float
    ``[N, 3]``: weight 1, ``y``, ``dy``), read by :mod:`bpm.runtime.observations`.
    """

    sequences: np.ndarray
    codes: np.ndarray
    counts: np.ndarray
    split: np.ndarray
    alphabet: str
    bin_names: tuple[str, ...]
    summary: dict = field(default_factory=dict)
    kind: str = "sortseq"

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def n_bins(self) -> int:
        return self.counts.shape[1]

    def subset(self, split: str) -> Dataset:
        """The rows of one split (``training``, ``validation`` or ``test``)."""
        keep = self.split == split
        rows = {k: getattr(self, k)[keep] for k in ("sequences", "codes", "counts", "split")}
        return replace(self, **rows)

    def sizes(self) -> dict[str, int]:
        return {s: int((self.split == s).sum()) for s in SPLITS}


# ---------------------------------------------------------------- checks


def check_sequences(
    values: pd.Series,
    alphabet: str,
    length: int | None,
    problems: RowProblems,
    first_row: int = 0,
) -> tuple[np.ndarray, int]:
    """Sequence strings as the alphabet spells them (:mod:`bpm.runtime.letters`: either
    case unless the alphabet has letters differing only in case) and their length
    (``length``, or if None the most common length in ``values``); missing values, bad
    letters and other lengths are recorded in ``problems``. A column of numbers (their
    leading zeros lost) is a column problem."""
    kind = getattr(values.dtype, "kind", "O")
    if kind in "iufcbmM":
        text = f"the sequence column '{values.name}' holds {values.dtype} values, not text "
        problems.column("bad sequences", text + "(read it as strings: dtype=str)")
        return np.full(len(values), "", dtype=object), length or 0
    missing = values.isna().to_numpy()
    table = spelling(alphabet)
    pairs = zip(values.tolist(), missing, strict=True)
    texts = ["" if gone else str(v).strip().translate(table) for v, gone in pairs]
    seqs = np.array(texts, dtype=object)
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    if length is None:
        found, freq = np.unique(lengths[~missing], return_counts=True)
        length = int(found[np.argmax(freq)]) if len(found) else 0
    wrong = ~missing & (lengths != length)
    outside = re.compile("[^" + "".join(re.escape(c) for c in alphabet) + "]")
    letters = np.array([outside.search(s) is not None for s in seqs], dtype=bool)
    group = "bad sequences"
    problems.add(group, "missing sequences in {rows}", missing, first_row)
    text = f"{{rows}} not {length} letters long (lengths {{values}})"
    problems.add(group, text, wrong, first_row, lengths[wrong].tolist())
    text = f"letters {{values}} outside the alphabet '{literal(alphabet)}' in {{rows}}"
    seen = (c for c in dict.fromkeys("".join(seqs[letters])) if c not in alphabet)
    problems.add(group, text, letters, first_row, seen)
    return seqs, length


def check_split(
    values: pd.Series, column: str, problems: RowProblems, first_row: int = 0
) -> np.ndarray:
    """Split labels (any of :data:`SPLIT_ALIASES`, any case) as ``uint8`` codes (index
    into :data:`SPLITS`, 0 where bad); other labels are recorded in ``problems``."""
    missing = values.isna().to_numpy()
    pairs = zip(values.tolist(), missing, strict=True)
    raw = ["" if gone else str(v).strip().lower() for v, gone in pairs]
    codes = [SPLIT_CODE.get(SPLIT_ALIASES.get(label, ""), -1) for label in raw]
    bad = np.array(codes, dtype=np.int64) < 0 if codes else np.zeros(0, dtype=bool)
    text = f"split column '{literal(column)}' has values {{values}} in {{rows}}; "
    text += f"expected one of {sorted(SPLIT_ALIASES)}"
    problems.add("bad split labels", text, bad, first_row, [raw[i] for i in np.flatnonzero(bad)])
    return np.array([max(c, 0) for c in codes], dtype=np.uint8)


def random_split(n: int, fractions: Sequence[float], seed: int) -> tuple[np.ndarray, str]:
    """A seeded random split of ``n`` rows (training/validation/test ``fractions``) as
    ``uint8`` codes, and how it was drawn (``random 60/20/20 (seed 0)``)."""
    check_fractions(fractions)
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    codes = np.full(n, SPLIT_CODE["test"], dtype=np.uint8)
    codes[order[:n_train]] = SPLIT_CODE["training"]
    codes[order[n_train : n_train + n_val]] = SPLIT_CODE["validation"]
    pct = "/".join(f"{round(100 * f)}" for f in fractions)
    return codes, f"random {pct} (seed {seed})"


def check_fractions(fractions: Sequence[float]) -> None:
    """A :class:`BpmDataError` unless ``fractions`` are three numbers >= 0 summing to 1."""
    try:
        ok = len(fractions) == 3 and min(fractions) >= 0 and abs(sum(fractions) - 1) <= 1e-6
    except TypeError:
        ok = False
    if not ok:
        raise BpmDataError(f"split fractions must be three numbers summing to 1, not {fractions}")


def draw_validation(split: np.ndarray, fractions: Sequence[float], seed: int, where=None):
    """Validation rows drawn from training when a split column gives none: the share
    ``fractions[1] / (fractions[0] + fractions[1])`` (a quarter by default) of the training
    rows among ``where`` (a boolean mask; default every row), drawn with ``seed``.
    ``split`` (uint8 codes) is changed in place; returns the record for the summary, or
    None when there are validation rows already or too few training rows (< 2)."""
    check_fractions(fractions)
    mask = np.ones(len(split), dtype=bool) if where is None else where
    if (mask & (split == SPLIT_CODE["validation"])).any():
        return None
    training = np.flatnonzero(mask & (split == SPLIT_CODE["training"]))
    share = fractions[1] / (fractions[0] + fractions[1]) if fractions[0] + fractions[1] else 0
    n = min(len(training) - 1, max(1, int(round(share * len(training)))))
    if len(training) < 2 or share <= 0:
        return None
    chosen = np.random.default_rng(seed).choice(training, size=n, replace=False)
    split[chosen] = SPLIT_CODE["validation"]
    return {"from": "training", "rows": int(n), "share": round(share, 6), "seed": int(seed)}


def check_header(
    header, name, sequence_column, count_columns, count_prefix, split_column, problems
):
    """``(count columns, split column)`` of the table ``name`` whose columns are
    ``header``: the count columns None if they cannot be found, the split column None if
    absent (draw a random split). A missing sequence column or count column is recorded
    in ``problems`` (a column problem; see :func:`read_dataset` for the options)."""
    header = [str(c) for c in header]
    if sequence_column not in header:
        problems.column(
            "bad columns", f"no sequence column '{sequence_column}' in {name}; columns are "
            f"{header[:20]}"
        )  # fmt: skip
    try:
        columns = find_count_columns(header, count_columns, count_prefix)
    except BpmDataError as error:
        problems.column("bad columns", str(error.diagnostics[0].message))
        columns = None
    return columns, split_column if split_column in header else None


def summarize(source, rows_read, reads, columns, set_aside, merged, conflicts, split, sizes):
    """The data summary both readers report: rows read, reads, count columns, rows set
    aside (no reads), rows merged into others, sequences seen under two splits, how the
    split was made (``split``), and the rows of each split after merging (``sizes``)."""
    summary = {"source": source, "rows_read": rows_read, "reads": reads, "bins": len(columns)}
    summary.update(count_columns=list(columns), zero_read_rows_set_aside=set_aside)
    summary.update(duplicate_rows_merged=merged, duplicate_split_conflicts=conflicts)
    summary.update(sequences=sum(sizes.values()), split=split)
    return summary | {f"n_{s}": sizes[s] for s in SPLITS}


def note_splits(summary: dict, carved: dict | None) -> dict:
    """``summary`` with the validation split carved from training (``carved``, from
    :func:`draw_validation`) and the empty splits, each recorded with a sentence in
    ``notes`` (an empty test split: the test metrics are null, not numbers)."""
    notes = []
    if carved is not None:
        summary["validation_carved"] = carved
        summary["split"] += (
            f"; no validation rows, so {carved['rows']} training rows ({carved['share']:.0%})"
            f" were drawn as validation (seed {carved['seed']})"
        )
        notes.append(summary["split"].split("; ", 1)[1])
    empty = [s for s in SPLITS if summary[f"n_{s}"] == 0]
    if empty:
        summary["empty_splits"] = empty
        notes += [f"no {s} rows: the {s} metrics are null" for s in empty]
    if notes:
        summary["notes"] = notes
    return summary


# ---------------------------------------------------------------- in memory


def _merge_duplicates(seqs: np.ndarray, counts: np.ndarray, split: np.ndarray):
    """One row per sequence, in first-seen order: counts summed, split the most held-out
    code of its rows. Returns the three arrays, rows merged and split conflicts."""
    uniq, first, inverse = np.unique(seqs.astype(str), return_index=True, return_inverse=True)
    if len(uniq) == len(seqs):
        return seqs, counts, split, 0, 0
    merged = np.zeros((len(uniq), counts.shape[1]), dtype=np.int64)
    np.add.at(merged, inverse, counts)
    best = np.zeros(len(uniq), dtype=np.uint8)
    np.maximum.at(best, inverse, split)
    lowest = np.full(len(uniq), 255, dtype=np.uint8)
    np.minimum.at(lowest, inverse, split)
    order = np.argsort(first, kind="stable")
    conflicts = int((best != lowest).sum())
    return uniq[order].astype(object), merged[order], best[order], len(seqs) - len(uniq), conflicts


def text_columns(sequence_column: str, split_column: str | None) -> tuple[str, ...]:
    """The columns read as text: the sequences and the split labels."""
    return (sequence_column,) if split_column is None else (sequence_column, split_column)


def check_rows(frame, name, options: dict, problems: RowProblems, first_row: int = 0, state=None):
    """Every check of one table or chunk: header (on the first chunk, ``state`` None),
    counts, sequences, split labels. ``state`` is ``(count columns, split column,
    length)`` from the chunk before; returns the new state and ``(counts, seqs, split)``
    (None for what could not be checked)."""
    if state is None:
        header = (options["sequence_column"], options["count_columns"], options["count_prefix"])
        columns, split_column = check_header(
            list(frame.columns), name, *header, options["split_column"], problems
        )
        state = (columns, split_column, options["length"])
    columns, split_column, length = state
    counts = seqs = split = None
    if columns is not None:
        counts = check_counts(frame, columns, problems, first_row, options.get("max_count"))
    if options["sequence_column"] in frame.columns:
        column = frame[options["sequence_column"]]
        seqs, length = check_sequences(column, options["alphabet"], length, problems, first_row)
    if split_column is not None:
        split = check_split(frame[split_column], split_column, problems, first_row)
    return (columns, split_column, length), (counts, seqs, split)


def read_dataset(
    source: str | Path | pd.DataFrame | Dataset,
    *,
    alphabet: str = "ACGT",
    length: int | None = None,
    sequence_column: str = "x",
    count_columns: Sequence[str] | None = None,
    count_prefix: str = "ct_",
    split_column: str | None = "set",
    split_fractions: Sequence[float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    carve_validation: bool = True,
    name: str | None = None,
) -> Dataset:
    """Read, check and encode a sort-seq count table.

    ``source`` is a path (CSV/TSV, compressed or not, or Parquet), a DataFrame, or an
    already-read :class:`Dataset` (returned as is). Count columns are ``count_columns``
    in bin order, or every ``<count_prefix><k>`` column sorted by ``k``. Without a split
    column, a random split with ``split_fractions`` (training/validation/test) is drawn
    from ``seed``. A split column with no validation rows gets validation rows drawn
    from training (:func:`draw_validation`, recorded in the summary) unless
    ``carve_validation=False``. Without ``length``, sequences must have the most common
    length. ``name`` is what messages call a DataFrame source.
    """
    if isinstance(source, Dataset):
        return source
    if isinstance(source, pd.DataFrame):
        name, df = name or "<DataFrame>", source.reset_index(drop=True)
        df.columns = [str(c) for c in df.columns]
    else:
        name = str(source)
        df = read_table(source, text_columns(sequence_column, split_column))
    check_fractions(split_fractions)
    options = {"alphabet": alphabet, "length": length, "sequence_column": sequence_column,
               "count_columns": count_columns, "count_prefix": count_prefix,
               "split_column": split_column}  # fmt: skip
    problems = RowProblems()
    twice = sorted({c for c in df.columns[df.columns.duplicated()]})
    if twice:
        raise BpmDataError(f"{name} has two or more columns named {twice[:5]}")
    state, (counts, seqs, split) = check_rows(df, name, options, problems)
    columns, split_column, length = state
    if len(df) == 0 and not problems.columns_bad():
        raise BpmDataError(f"{name} has no rows")
    problems.raise_if_any()
    if counts.sum(dtype=float) >= 2**63:
        raise BpmDataError(f"{name}: more than 2^63 reads in all; no count can hold them")
    if split_column is not None:
        split_source = f"column '{split_column}'"
    else:
        split, split_source = random_split(len(df), split_fractions, seed)

    reads = counts.sum(axis=1)
    empty = reads == 0
    seqs, counts, split = seqs[~empty], counts[~empty], split[~empty]
    seqs, counts, split, n_merged, n_conflicts = _merge_duplicates(seqs, counts, split)
    if len(seqs) == 0:
        raise BpmDataError(f"{name}: no row has any reads")
    carved = None
    if split_column is not None and carve_validation:
        split = split.copy()
        carved = draw_validation(split, split_fractions, seed)
    labels = np.array(SPLITS, dtype=object)[split]
    sizes = {s: int((split == k).sum()) for s, k in SPLIT_CODE.items()}
    tally = (int(empty.sum()), n_merged, n_conflicts)
    summary = summarize(name, len(df), int(reads.sum()), columns, *tally, split_source, sizes)
    summary = note_splits(summary, carved)
    return Dataset(seqs, encode(seqs, alphabet), counts, labels, alphabet, tuple(columns), summary)
