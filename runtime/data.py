"""Read sort-seq count tables, check them, and encode them for fitting.

A table has one sequence column, one count column per sort bin (in bin order, dimmest
first) and optionally a split column. The default layout is MAVE-NN's (``x``,
``ct_0``..``ct_9``, ``set`` with ``training``/``validation``/``test``), the layout of
the shipped ``data/lac_sortseq_kinney2010.csv.gz``.

The checks are public so that the in-memory reader (:func:`read_dataset`) and the
chunked encoder (:func:`bpm.runtime.store.encode_file`) share them: each takes the data
row its chunk starts at (``first_row``) and records bad rows in a :class:`RowProblems`,
which names every bad row once, by its 0-based row in the whole table, and raises one
:class:`BpmDataError` after the whole table is read. Nothing is dropped silently: rows
that are set aside (no reads) or merged (duplicate sequences) are counted in the summary.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from bpm.compiler.errors import BpmDataError, Diagnostic

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
SHOWN = 5  # rows (and values) named in an error message
_KEPT = 20  # distinct bad values kept per problem


@dataclass
class Dataset:
    """Unique sequences with their per-bin read counts and split labels.

    ``codes`` is ``uint8[N, L]`` (index into ``alphabet``), ``counts`` is ``int64[N, B]``
    (reads per bin, bins in order), ``split`` is a string array of ``training``,
    ``validation`` or ``test``.
    """

    sequences: np.ndarray
    codes: np.ndarray
    counts: np.ndarray
    split: np.ndarray
    alphabet: str
    bin_names: tuple[str, ...]
    summary: dict = field(default_factory=dict)

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


# ---------------------------------------------------------------- files


def _separator(path: Path) -> str | None:
    """None for Parquet, else the CSV separator (tab for .tsv/.tab/.txt, maybe compressed)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        return None
    stem = [s for s in suffixes if s not in (".gz", ".bz2", ".xz", ".zip")]
    return "\t" if stem and stem[-1] in (".tsv", ".tab", ".txt") else ","


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV/TSV (optionally gzipped) or Parquet file as a DataFrame of strings and numbers."""
    path = Path(path)
    if not path.exists():
        raise BpmDataError(f"data file not found: {path}")
    try:
        sep = _separator(path)
        if sep is None:
            return pd.read_parquet(path)
        return pd.read_csv(path, sep=sep, keep_default_na=True)
    except Exception as exc:  # pandas and pyarrow raise many kinds
        raise BpmDataError(f"cannot read {path}: {exc}") from exc


def read_chunks(path: str | Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The table of :func:`read_table` in DataFrames of ``chunk_rows`` rows, in file order."""
    path = Path(path)
    if not path.exists():
        raise BpmDataError(f"data file not found: {path}")
    sep = _separator(path)
    if sep is None:
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
        return
    yield from pd.read_csv(path, sep=sep, chunksize=chunk_rows, keep_default_na=True)


# ---------------------------------------------------------------- checks


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
    rows: list[int] = field(default_factory=list)  # the first SHOWN, in the whole table
    values: dict = field(default_factory=dict)  # distinct bad values, first seen first


@dataclass
class RowProblems:
    """Bad rows found so far, by problem, over one table read whole or in chunks.

    A check calls :meth:`add` for each problem it looks for, found or not, so that the
    message lists problems in the order the checks run whichever chunk finds them first.
    """

    found: dict[tuple[str, str], _Found] = field(default_factory=dict)

    def add(self, group: str, text: str, bad, first_row: int = 0, values=()) -> None:
        """Record the rows where ``bad`` (a boolean array over a chunk) is true.

        ``text`` says what is wrong, with ``{rows}`` for the rows and ``{values}`` for the
        bad values seen (``values``, one per bad row, or any iterable of them).
        """
        found = self.found.setdefault((group, text), _Found())
        rows = np.flatnonzero(bad)
        found.count += len(rows)
        found.rows.extend(int(r) + first_row for r in rows[: SHOWN - len(found.rows)])
        for value in dict.fromkeys(values):
            if len(found.values) >= _KEPT:
                break
            found.values.setdefault(value, None)

    def __bool__(self) -> bool:
        return any(f.count for f in self.found.values())

    def error(self) -> BpmDataError | None:
        """One error, a line per group (``bad read counts: ...``), or None if all is well."""
        lines: dict[str, list[str]] = {}
        for (group, text), found in self.found.items():
            if found.count:
                rows = format_rows(found.rows, count=found.count)
                values = sorted(found.values)
                lines.setdefault(group, []).append(text.format(rows=rows, values=values))
        if not lines:
            return None
        messages = [f"{group}: " + "; ".join(parts) for group, parts in lines.items()]
        return BpmDataError(messages[0], diagnostics=[Diagnostic(m) for m in messages])

    def raise_if_any(self) -> None:
        """Raise :meth:`error` if any row is bad."""
        if (error := self.error()) is not None:
            raise error


def find_count_columns(
    header: Sequence[str], count_columns: Sequence[str] | None, count_prefix: str
) -> list[str]:
    """The count columns in bin order: ``count_columns`` (checked to exist), or every
    ``<count_prefix><k>`` column of ``header`` sorted by ``k``."""
    header = list(header)
    if count_columns is not None:
        missing = [c for c in count_columns if c not in header]
        if missing:
            raise BpmDataError(f"count column(s) {missing} not in the table; columns are {header}")
        return list(count_columns)
    pattern = re.compile(re.escape(count_prefix) + r"(\d+)$")
    found = sorted((int(m.group(1)), c) for c in header if (m := pattern.match(str(c))))
    if not found:
        raise BpmDataError(
            f"no count columns named '{count_prefix}<bin>' in the table; columns are "
            f"{header} (name them with count_columns=[...] or --counts)"
        )
    return [c for _, c in found]


def check_counts(
    frame: pd.DataFrame,
    columns: Sequence[str],
    problems: RowProblems,
    first_row: int = 0,
    max_count: int | None = None,
) -> np.ndarray:
    """The ``columns`` as ``int64[N, B]`` read counts (0 where bad); missing, non-numeric,
    negative, fractional counts and counts over ``max_count`` are recorded in ``problems``."""
    raw = frame[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    finite = np.isfinite(raw)
    negative = finite & (raw < 0)
    fractional = finite & ~negative & (raw != np.round(raw))
    large = finite & (raw > max_count) if max_count is not None else np.zeros_like(finite)
    group = "bad read counts"
    problems.add(group, "missing or non-numeric counts in {rows}", (~finite).any(1), first_row)
    problems.add(group, "negative counts in {rows}", negative.any(1), first_row)
    problems.add(group, "fractional counts in {rows}", fractional.any(1), first_row)
    if max_count is not None:
        text = f"read counts over {max_count} in {{rows}}"
        problems.add(group, text, large.any(1), first_row)
    return np.where(~finite | negative | fractional | large, 0, raw).astype(np.int64)


def check_sequences(
    values: pd.Series,
    alphabet: str,
    length: int | None,
    problems: RowProblems,
    first_row: int = 0,
) -> tuple[np.ndarray, int]:
    """Upper-case sequence strings and their length (``length``, or if None the most
    common length in ``values``); missing values, bad letters and other lengths are
    recorded in ``problems``."""
    missing = values.isna().to_numpy()
    seqs = np.where(missing, "", values.astype(str).str.strip().str.upper().to_numpy(object))
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    if length is None:
        found, freq = np.unique(lengths[~missing], return_counts=True)
        length = int(found[np.argmax(freq)]) if len(found) else 0
    wrong = ~missing & (lengths != length)
    outside = re.compile(f"[^{re.escape(alphabet)}]")
    letters = np.array([outside.search(s) is not None for s in seqs], dtype=bool)
    group = "bad sequences"
    problems.add(group, "missing sequences in {rows}", missing, first_row)
    text = f"{{rows}} not {length} letters long (lengths {{values}})"
    problems.add(group, text, wrong, first_row, lengths[wrong].tolist())
    text = f"letters {{values}} outside the alphabet '{alphabet}' in {{rows}}"
    seen = (c for c in dict.fromkeys("".join(seqs[letters])) if c not in alphabet)
    problems.add(group, text, letters, first_row, seen)
    return seqs, length


def check_split(
    values: pd.Series, column: str, problems: RowProblems, first_row: int = 0
) -> np.ndarray:
    """Split labels (any of :data:`SPLIT_ALIASES`, any case) as ``uint8`` codes (index
    into :data:`SPLITS`, 0 where bad); other labels are recorded in ``problems``."""
    raw = values.astype(str).str.strip().str.lower()
    labels = raw.map(SPLIT_ALIASES)
    bad = labels.isna().to_numpy()
    text = f"split column '{column}' has values {{values}} in {{rows}}; "
    text += f"expected one of {sorted(SPLIT_ALIASES)}"
    problems.add("bad split labels", text, bad, first_row, raw[bad].tolist())
    return labels.map(SPLIT_CODE).fillna(0).to_numpy(dtype=np.uint8)


def random_split(n: int, fractions: Sequence[float], seed: int) -> tuple[np.ndarray, str]:
    """A seeded random split of ``n`` rows (training/validation/test ``fractions``) as
    ``uint8`` codes, and how it was drawn (``random 60/20/20 (seed 0)``)."""
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise BpmDataError(f"split fractions must be three numbers summing to 1, not {fractions}")
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    codes = np.full(n, SPLIT_CODE["test"], dtype=np.uint8)
    codes[order[:n_train]] = SPLIT_CODE["training"]
    codes[order[n_train : n_train + n_val]] = SPLIT_CODE["validation"]
    pct = "/".join(f"{round(100 * f)}" for f in fractions)
    return codes, f"random {pct} (seed {seed})"


def encode(sequences: Sequence[str] | np.ndarray, alphabet: str = "ACGT") -> np.ndarray:
    """Checked, equal-length sequences as ``uint8[N, L]`` codes (index into ``alphabet``)."""
    table = np.full(256, 255, dtype=np.uint8)
    for i, letter in enumerate(alphabet):
        table[ord(letter.upper())] = i
        table[ord(letter.lower())] = i
    seqs = list(sequences)
    length = len(seqs[0]) if seqs else 0
    raw = np.frombuffer("".join(seqs).encode("ascii"), dtype=np.uint8)
    return table[raw].reshape(len(seqs), length)


def check_header(header, name, sequence_column, count_columns, count_prefix, split_column):
    """``(count columns, split column)`` of the table ``name`` whose columns are
    ``header`` (the split column None if absent: draw a random split); a missing sequence
    column or count column is an error (see :func:`read_dataset` for the options)."""
    if sequence_column not in header:
        raise BpmDataError(
            f"no sequence column '{sequence_column}' in {name}; columns are {list(header)}"
        )
    columns = find_count_columns(header, count_columns, count_prefix)
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
) -> Dataset:
    """Read, check and encode a sort-seq count table.

    ``source`` is a path (CSV/TSV, gzipped or not, or Parquet), a DataFrame, or an
    already-read :class:`Dataset` (returned as is). Count columns are ``count_columns``
    in bin order, or every ``<count_prefix><k>`` column sorted by ``k``. Without a split
    column, a random split with ``split_fractions`` (training/validation/test) is drawn
    from ``seed``. Without ``length``, sequences must have the most common length.
    """
    if isinstance(source, Dataset):
        return source
    if isinstance(source, pd.DataFrame):
        name, df = "<DataFrame>", source.reset_index(drop=True)
    else:
        name, df = str(source), read_table(source)
    options = (sequence_column, count_columns, count_prefix, split_column)
    columns, split_column = check_header(list(df.columns), name, *options)
    if len(df) == 0:
        raise BpmDataError(f"{name} has no rows")
    problems = RowProblems()
    counts = check_counts(df, columns, problems)
    seqs, length = check_sequences(df[sequence_column], alphabet, length, problems)
    if split_column is not None:
        split = check_split(df[split_column], split_column, problems)
        split_source = f"column '{split_column}'"
    else:
        split, split_source = random_split(len(df), split_fractions, seed)
    problems.raise_if_any()

    reads = counts.sum(axis=1)
    empty = reads == 0
    seqs, counts, split = seqs[~empty], counts[~empty], split[~empty]
    seqs, counts, split, n_merged, n_conflicts = _merge_duplicates(seqs, counts, split)
    if len(seqs) == 0:
        raise BpmDataError(f"{name}: no row has any reads")
    labels = np.array(SPLITS, dtype=object)[split]
    sizes = {s: int((split == k).sum()) for s, k in SPLIT_CODE.items()}
    tally = (int(empty.sum()), n_merged, n_conflicts)
    summary = summarize(name, len(df), int(reads.sum()), columns, *tally, split_source, sizes)
    return Dataset(seqs, encode(seqs, alphabet), counts, labels, alphabet, tuple(columns), summary)
