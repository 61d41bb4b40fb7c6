"""Fuzz test of the runtime's data reading (issue 15, "Adversarial inputs"): seeded
random tables, cut short, mistyped and mislabelled, in every format read_dataset and
the chunked store read. Every outcome is a Dataset whose numbers hold together, or a
BpmError whose every line is one message naming the file, a row or a column; anything
else (a traceback) is counted and must not happen.

The counts are printed (``pytest -s``) and recorded as the test's user properties.
"""

from __future__ import annotations

import gzip
import json
import time
import traceback
from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bpm.compiler.errors import BpmError
from bpm.runtime.data import SPLITS, read_dataset
from bpm.runtime.store import encode_file

try:
    import pyarrow  # noqa: F401

    FORMATS = ("frame", "csv", "tsv", "csv.gz", "tsv.gz", "parquet")
except ImportError:  # the fuzz runs without Parquet
    FORMATS = ("frame", "csv", "tsv", "csv.gz", "tsv.gz")

CASES = 2400
STORE_EVERY = 7  # every 7th file (each format in turn) is also encoded in chunks
SEED = 20261202
ALPHABETS = ("ACGT", "01", "xy", "Aa", "αβ", "AC?", "ACGT")
ODD_LETTERS = ("N", "n", "a", "c", "é", "中", " ", "?", "-", "{", "0", "", "\x00")
ODD_COUNTS = (np.nan, np.inf, -np.inf, -1, 1.5, 2**63, 2**64 + 3, 1e20, 2**53 + 1, "many",
              "", " 3 ", "0x10", True, "NaN", "-0", 0)  # fmt: skip
LABELS = ("training", "validation", "test", "train", "VAL", "dev", "holdout", "", "nan", 3)


def random_table(rng: np.random.Generator) -> tuple[pd.DataFrame, str, dict]:
    """A small table with a random alphabet, and the read options for it, then spoiled
    (built as lists, made a DataFrame once: pandas edits cell by cell are slow)."""
    alphabet = ALPHABETS[rng.integers(len(ALPHABETS))]
    n, length, bins = int(rng.integers(1, 9)), int(rng.integers(1, 6)), int(rng.integers(1, 4))
    letters = list(alphabet)
    columns: dict[str, list] = {
        "x": ["".join(letters[i] for i in rng.integers(0, len(letters), length)) for _ in range(n)]
    }
    for k in range(bins):
        columns[f"ct_{k}"] = rng.integers(0, 4, n).tolist()
    if rng.random() < 0.7:
        columns["set"] = [SPLITS[i] for i in rng.choice(3, n, p=[0.6, 0.2, 0.2])]
    options: dict = {"alphabet": alphabet}
    for _ in range(int(rng.integers(0, 4))):
        spoil(columns, n, rng, options)
    frame = pd.DataFrame(columns)
    return (frame.iloc[:0] if options.pop("no rows", False) else frame), alphabet, options


def spoil(columns: dict, n: int, rng: np.random.Generator, options: dict) -> None:
    """One random thing wrong (or odd but fine) with the table's ``columns``."""
    row = int(rng.integers(n))
    counts = [c for c in columns if c.startswith("ct_")]
    what = int(rng.integers(14))
    if "x" not in columns and what in (1, 2, 10, 11):
        return  # the sequence column was renamed by an earlier spoil
    if what == 0 and counts:  # an odd count
        column = counts[rng.integers(len(counts))]
        columns[column] = list(columns[column])
        columns[column][row] = ODD_COUNTS[rng.integers(len(ODD_COUNTS))]
    elif what == 1:  # an odd letter, or lower case
        s = str(columns["x"][row])
        at = int(rng.integers(len(s) + 1))
        odd = ODD_LETTERS[rng.integers(len(ODD_LETTERS))]
        columns["x"][row] = s[:at] + odd + s[at + 1 :] if rng.random() < 0.5 else s.lower()
    elif what == 2:  # a missing sequence
        columns["x"][row] = None
    elif what == 3 and "set" in columns:  # an odd split label
        columns["set"][row] = LABELS[rng.integers(len(LABELS))]
    elif what == 4 and counts:  # a gap, a twin, or a column gone
        column = counts[rng.integers(len(counts))]
        new = str(rng.choice([f"ct_{len(counts) + 1}", "ct_0" + column[3:], "other"]))
        columns[new] = columns.pop(column)
    elif what == 5:  # dates, booleans or categories as counts
        column = counts[0] if counts else "ct_0"
        kind = rng.integers(3)
        if kind == 0:
            columns[column] = pd.date_range("2020-01-01", periods=n)
        elif kind == 1:
            columns[column] = (rng.random(n) < 0.5).tolist()
        else:
            columns[column] = pd.Categorical(rng.choice(["1", "2"], n))
    elif what == 6:  # every row in one split
        columns["set"] = [SPLITS[rng.integers(3)]] * n
    elif what == 7:  # no reads in some columns, maybe all
        for column in counts:
            if rng.random() < 0.3:
                columns[column] = [0] * n
    elif what == 8:  # the sequence column under another name, or named by option
        if rng.random() < 0.5 and "x" in columns:
            columns["seq"] = columns.pop("x")
        else:
            options["sequence_column"] = "seq"
    elif what == 9 and counts:  # count columns named by option, maybe twice or missing
        named = rng.choice(counts + ["ct_9"], int(rng.integers(1, len(counts) + 2)))
        options["count_columns"] = [str(c) for c in named]
    elif what == 10:  # sequences as numbers
        columns["x"] = rng.integers(0, 99, n).tolist()
    elif what == 11:  # duplicates across splits
        columns["x"][row] = columns["x"][0]
    elif what == 12:  # no rows
        options["no rows"] = True
    elif what == 13:  # fixed length that does not match, or odd split fractions
        if rng.random() < 0.5:
            options["length"] = int(rng.integers(0, 8))
        else:
            options["split_column"] = None
            options["split_fractions"] = tuple(float(f) for f in rng.choice([0, 0.5, 1, -0.2], 3))


def written(frame: pd.DataFrame, fmt: str, folder: Path, rng: np.random.Generator, k: int):
    """The table as ``fmt`` in ``folder`` (maybe cut short or garbled), or the frame."""
    if fmt == "frame":
        return frame
    path = folder / f"t{k}.{fmt}"
    if fmt == "parquet":
        try:
            frame.to_parquet(path)
        except Exception:  # noqa: BLE001 -- mixed object columns pyarrow cannot store
            frame.astype(str).to_parquet(path)
    else:
        text = frame.to_csv(sep="\t" if fmt.startswith("tsv") else ",", index=False)
        data = text.encode("utf-8")
        cut = rng.random()
        if cut < 0.1:
            data = data[: int(rng.integers(len(data) + 1))]  # cut short
        elif cut < 0.13:
            data = bytes(rng.integers(0, 256, int(rng.integers(0, 60)), dtype=np.uint8))
        path.write_bytes(gzip.compress(data) if fmt.endswith(".gz") else data)
        if fmt.endswith(".gz") and rng.random() < 0.1:
            raw = path.read_bytes()
            path.write_bytes(raw[: int(rng.integers(len(raw) + 1))])  # a truncated gzip
    if fmt == "parquet" and rng.random() < 0.1:
        raw = path.read_bytes()
        path.write_bytes(raw[: int(rng.integers(len(raw) + 1))])
    return path


def check_dataset(d, alphabet: str) -> None:
    """The numbers of a table that was accepted hold together."""
    counts = np.asarray(d.counts)
    assert counts.dtype.kind in "iu" and (counts >= 0).all() and (counts.sum(1) > 0).all()
    assert int(counts.sum(dtype=np.int64)) == d.summary["reads"]  # merging loses no read
    assert (np.asarray(d.codes) < len(alphabet)).all()
    json.dumps(d.summary, allow_nan=False)
    assert sum(d.sizes().values()) == len(d)


def clean(error: BpmError, source) -> bool:
    """Every line is a message naming the file, a row or a column."""
    lines = str(error).splitlines()
    names = [str(source), "row", "column", "split fractions", "count", "sequence"]
    return bool(lines) and all(any(w in line for w in names) for line in lines)


@pytest.mark.filterwarnings("ignore")
def test_fuzzed_tables_give_a_dataset_or_one_clean_error(tmp_path, record_property):
    rng = np.random.default_rng(SEED)
    tally: Counter = Counter()
    failures: list[str] = []
    started = time.perf_counter()
    for k in range(CASES):
        frame, alphabet, options = random_table(rng)
        fmt = FORMATS[k % len(FORMATS)]
        source = written(frame, fmt, tmp_path, rng, k)
        readers = [partial(read_dataset, source, **options)]
        if fmt != "frame" and k % STORE_EVERY == 1:
            chunk = int(rng.integers(1, 4))
            store = tmp_path / "s"
            readers.append(
                partial(encode_file, source, cache_dir=store, chunk_rows=chunk, **options)
            )
        for read in readers:
            tally["cases"] += 1
            try:
                result = read()
            except BpmError as error:
                if clean(error, source):
                    tally["clean errors"] += 1
                else:
                    tally["unclear errors"] += 1
                    failures.append(f"{fmt} {options}: {error}")
                continue
            except Exception:  # noqa: BLE001 -- what the test hunts for
                tally["tracebacks"] += 1
                failures.append(f"{fmt} {options}:\n{frame}\n{traceback.format_exc()}")
                continue
            try:
                check_dataset(result, alphabet)
                tally["datasets"] += 1
            except AssertionError:
                tally["bad datasets"] += 1
                failures.append(f"{fmt} {options}: accepted but inconsistent\n{frame}\n"
                                f"{result.summary}\n{traceback.format_exc()}")  # fmt: skip
    seconds = time.perf_counter() - started
    for key, value in sorted(tally.items()):
        record_property(key, value)
    print(f"\nfuzz tables: {dict(tally)} in {seconds:.1f} s")
    assert tally["cases"] >= 2000
    assert tally["datasets"] > 100 and tally["clean errors"] > 100  # both sides exercised
    assert not failures, f"{len(failures)} failures; first:\n" + "\n\n".join(failures[:3])


def test_the_fuzz_reaches_every_reader(tmp_path):
    """Each format the fuzz writes is read back whole when nothing is spoiled."""
    frame = pd.DataFrame({"x": ["ACGT", "TTGA", "CCAA"], "ct_0": [1, 0, 2], "ct_1": [0, 3, 1],
                          "set": ["training", "validation", "test"]})  # fmt: skip
    for k, fmt in enumerate(FORMATS):
        rng = np.random.default_rng(0)  # rng.random() = 0.64: not cut, not garbled
        d = read_dataset(written(frame, fmt, tmp_path, rng, k))
        assert d.counts.tolist() == [[1, 0], [0, 3], [2, 1]], fmt
