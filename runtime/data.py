"""Read sort-seq count tables, check them, and encode them for fitting.

A table has one sequence column, one count column per sort bin (in bin order, dimmest
first) and optionally a split column. The default layout is MAVE-NN's (``x``,
``ct_0``..``ct_9``, ``set`` with ``training``/``validation``/``test``), the layout of
the shipped ``data/lac_sortseq_kinney2010.csv.gz``.

Nothing is dropped silently: bad rows raise :class:`BpmDataError` naming them, and rows
that are set aside (no reads) or merged (duplicate sequences) are counted in
``Dataset.summary``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bpm.compiler.errors import BpmDataError

SPLITS = ("training", "validation", "test")
_SPLIT_ALIASES = {
    "training": "training",
    "train": "training",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
    "testing": "test",
}
# When one sequence appears under several splits, it goes to the most held-out one, so
# that no sequence scored on validation or test data is ever trained on.
_SPLIT_PRIORITY = {"training": 0, "validation": 1, "test": 2}
_SHOW = 5  # rows named in an error message


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
        return Dataset(
            self.sequences[keep],
            self.codes[keep],
            self.counts[keep],
            self.split[keep],
            self.alphabet,
            self.bin_names,
            self.summary,
        )

    def sizes(self) -> dict[str, int]:
        return {s: int((self.split == s).sum()) for s in SPLITS}


def _rows(index: np.ndarray) -> str:
    """``rows 3, 17, 42 and 5 more`` for an error message (0-based data rows)."""
    index = np.asarray(index)
    shown = ", ".join(str(int(i)) for i in index[:_SHOW])
    more = f" and {len(index) - _SHOW} more" if len(index) > _SHOW else ""
    word = "row" if len(index) == 1 else "rows"
    return f"{len(index)} {word} ({shown}{more}; 0-based data rows, header excluded)"


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV/TSV (optionally gzipped) or Parquet file as a DataFrame of strings and numbers."""
    path = Path(path)
    if not path.exists():
        raise BpmDataError(f"data file not found: {path}")
    suffixes = [s.lower() for s in path.suffixes]
    try:
        if suffixes and suffixes[-1] in (".parquet", ".pq"):
            return pd.read_parquet(path)
        stem = [s for s in suffixes if s not in (".gz", ".bz2", ".xz", ".zip")]
        sep = "\t" if stem and stem[-1] in (".tsv", ".tab", ".txt") else ","
        return pd.read_csv(path, sep=sep, dtype={}, keep_default_na=True)
    except BpmDataError:
        raise
    except Exception as exc:  # pandas and pyarrow raise many kinds
        raise BpmDataError(f"cannot read {path}: {exc}") from exc


def _count_columns(
    df: pd.DataFrame, count_columns: Sequence[str] | None, count_prefix: str
) -> list[str]:
    if count_columns is not None:
        missing = [c for c in count_columns if c not in df.columns]
        if missing:
            raise BpmDataError(
                f"count column(s) {missing} not in the table; columns are {list(df.columns)}"
            )
        return list(count_columns)
    pattern = re.compile(re.escape(count_prefix) + r"(\d+)$")
    found = sorted(
        (int(m.group(1)), c) for c in df.columns if (m := pattern.match(str(c))) is not None
    )
    if not found:
        raise BpmDataError(
            f"no count columns named '{count_prefix}<bin>' in the table; columns are "
            f"{list(df.columns)} (name them with count_columns=[...] or --counts)"
        )
    return [c for _, c in found]


def _check_counts(df: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Counts as int64[N, B]; missing, non-numeric, negative or fractional counts are errors."""
    raw = df[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    problems = []
    for what, bad in (
        ("missing or non-numeric counts", ~np.isfinite(raw)),
        ("negative counts", np.nan_to_num(raw) < 0),
        ("fractional counts", np.nan_to_num(raw) != np.round(np.nan_to_num(raw))),
    ):
        rows = np.flatnonzero(bad.any(axis=1))
        if len(rows):
            problems.append(f"{what} in {_rows(rows)}")
    if problems:
        raise BpmDataError("bad read counts: " + "; ".join(problems))
    return raw.astype(np.int64)


def _check_sequences(seqs: pd.Series, alphabet: str, length: int | None) -> np.ndarray:
    """Sequences as upper-case strings; missing values, bad letters and bad lengths are errors."""
    missing = np.flatnonzero(seqs.isna().to_numpy())
    if len(missing):
        raise BpmDataError(f"missing sequences in {_rows(missing)}")
    seqs = seqs.astype(str).str.strip().str.upper()
    lengths = seqs.str.len().to_numpy()
    if length is None:
        values, freq = np.unique(lengths, return_counts=True)
        length = int(values[np.argmax(freq)])
    problems = []
    wrong = np.flatnonzero(lengths != length)
    if len(wrong):
        seen = sorted(set(int(n) for n in lengths[wrong]))[:_SHOW]
        problems.append(f"{_rows(wrong)} not {length} letters long (lengths {seen})")
    bad_letter = re.compile(f"[^{re.escape(alphabet)}]")
    letters = seqs.str.contains(bad_letter).to_numpy()
    bad = np.flatnonzero(letters)
    if len(bad):
        found = sorted(set("".join(seqs.iloc[bad[:50]].tolist())) - set(alphabet))
        problems.append(f"letters {found} outside the alphabet '{alphabet}' in {_rows(bad)}")
    if problems:
        raise BpmDataError("bad sequences: " + "; ".join(problems))
    return seqs.to_numpy(dtype=object)


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


def _splits(
    df: pd.DataFrame, split_column: str | None, fractions: Sequence[float], seed: int
) -> tuple[np.ndarray, str]:
    """Split labels from the column if there is one, else a seeded random split."""
    if split_column is not None and split_column in df.columns:
        raw = df[split_column].astype(str).str.strip().str.lower()
        labels = raw.map(_SPLIT_ALIASES)
        bad = np.flatnonzero(labels.isna().to_numpy())
        if len(bad):
            values = sorted(set(raw.iloc[bad[:50]]))
            raise BpmDataError(
                f"split column '{split_column}' has values {values} in {_rows(bad)}; "
                f"expected one of {sorted(_SPLIT_ALIASES)}"
            )
        return labels.to_numpy(dtype=object), f"column '{split_column}'"
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise BpmDataError(f"split fractions must be three numbers summing to 1, not {fractions}")
    n = len(df)
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    labels = np.empty(n, dtype=object)
    labels[order[:n_train]] = "training"
    labels[order[n_train : n_train + n_val]] = "validation"
    labels[order[n_train + n_val :]] = "test"
    pct = "/".join(f"{round(100 * f)}" for f in fractions)
    return labels, f"random {pct} (seed {seed})"


def _merge_duplicates(
    seqs: np.ndarray, counts: np.ndarray, split: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """One row per sequence: counts summed, split the most held-out of its rows."""
    uniq, inverse = np.unique(seqs.astype(str), return_inverse=True)
    if len(uniq) == len(seqs):
        return seqs, counts, split, 0, 0
    merged = np.zeros((len(uniq), counts.shape[1]), dtype=np.int64)
    np.add.at(merged, inverse, counts)
    priority = np.array([_SPLIT_PRIORITY[s] for s in split])
    best = np.full(len(uniq), -1)
    np.maximum.at(best, inverse, priority)
    lowest = np.full(len(uniq), 99)
    np.minimum.at(lowest, inverse, priority)
    names = np.array(SPLITS, dtype=object)
    # Keep the first-seen order of sequences.
    first = np.full(len(uniq), len(seqs))
    np.minimum.at(first, inverse, np.arange(len(seqs)))
    order = np.argsort(first, kind="stable")
    n_conflicts = int((best != lowest).sum())
    return (
        uniq[order].astype(object),
        merged[order],
        names[best[order]],
        len(seqs) - len(uniq),
        n_conflicts,
    )


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
    from ``seed``.
    """
    if isinstance(source, Dataset):
        return source
    name = "<DataFrame>"
    if isinstance(source, pd.DataFrame):
        df = source.reset_index(drop=True)
    else:
        name = str(source)
        df = read_table(source)
    if sequence_column not in df.columns:
        raise BpmDataError(
            f"no sequence column '{sequence_column}' in {name}; columns are {list(df.columns)}"
        )
    if len(df) == 0:
        raise BpmDataError(f"{name} has no rows")
    columns = _count_columns(df, count_columns, count_prefix)
    counts = _check_counts(df, columns)
    seqs = _check_sequences(df[sequence_column], alphabet, length)
    split, split_source = _splits(df, split_column, split_fractions, seed)

    n_rows = len(df)
    reads = counts.sum(axis=1)
    empty = reads == 0
    seqs, counts, split = seqs[~empty], counts[~empty], split[~empty]
    seqs, counts, split, n_merged, n_conflicts = _merge_duplicates(seqs, counts, split)
    if len(seqs) == 0:
        raise BpmDataError(f"{name}: no row has any reads")

    summary = {
        "source": name,
        "rows_read": n_rows,
        "reads": int(reads.sum()),
        "bins": len(columns),
        "count_columns": columns,
        "zero_read_rows_set_aside": int(empty.sum()),
        "duplicate_rows_merged": n_merged,
        "duplicate_split_conflicts": n_conflicts,
        "sequences": len(seqs),
        "split": split_source,
    }
    dataset = Dataset(
        sequences=seqs,
        codes=encode(seqs, alphabet),
        counts=counts,
        split=split,
        alphabet=alphabet,
        bin_names=tuple(columns),
        summary=summary,
    )
    summary.update({f"n_{k}": v for k, v in dataset.sizes().items()})
    return dataset
