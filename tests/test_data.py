"""Reading, checking, merging, splitting and encoding sort-seq count tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bpm.compiler.errors import BpmDataError
from bpm.runtime.data import (
    SPLITS,
    RowProblems,
    check_counts,
    encode,
    format_rows,
    read_dataset,
)
from bpm.runtime.store import encode_file

DATA = "data/lac_sortseq_kinney2010.csv.gz"


def table(seqs, counts, split=None):
    frame = pd.DataFrame({"x": seqs})
    counts = np.asarray(counts, dtype=object)
    for k in range(counts.shape[1]):
        frame[f"ct_{k}"] = counts[:, k]
    if split is not None:
        frame["set"] = split
    return frame


GOOD = ["ACGT", "AACC", "GGTT", "TTAA", "CAGT", "GATC"]


def good(**kw):
    counts = [[1, 0, 2], [0, 3, 0], [1, 1, 1], [0, 0, 4], [2, 0, 0], [0, 1, 0]]
    split = ["training", "training", "validation", "test", "training", "validation"]
    return table(GOOD, counts, split)


def test_shipped_file_defaults():
    d = read_dataset(DATA)
    assert d.codes.shape == (50518, 75) and d.codes.dtype == np.uint8
    assert d.counts.shape == (50518, 10)
    assert d.sizes() == {"training": 30516, "validation": 10067, "test": 9935}
    assert d.summary["reads"] == 51853
    assert d.summary["zero_read_rows_set_aside"] == 0
    assert d.summary["duplicate_rows_merged"] == 0
    assert "".join("ACGT"[c] for c in d.codes[0]) == d.sequences[0]


def test_encode_lower_case():
    assert encode(["acgt", "TGCA"]).tolist() == [[0, 1, 2, 3], [3, 2, 1, 0]]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda f: f.assign(x=["ACGN"] + GOOD[1:]), "outside the alphabet"),
        (lambda f: f.assign(x=["ACG"] + GOOD[1:]), "not 4 letters long"),
        (lambda f: f.assign(ct_0=[-1, 0, 1, 0, 2, 0]), "negative counts"),
        (lambda f: f.assign(ct_1=[0, 1.5, 1, 0, 0, 1]), "fractional counts"),
        (lambda f: f.assign(ct_2=[2, 0, None, 4, 0, 0]), "missing or non-numeric counts"),
        (lambda f: f.assign(ct_2=[2, 0, "many", 4, 0, 0]), "missing or non-numeric counts"),
        (lambda f: f.assign(x=[None] + GOOD[1:]), "missing sequences"),
        (lambda f: f.assign(set=["training", "holdout"] + ["test"] * 4), "split column"),
        (lambda f: f.drop(columns=["x"]), "no sequence column"),
        (lambda f: f.drop(columns=["ct_0", "ct_1", "ct_2"]), "no count columns"),
        (lambda f: f.iloc[:0], "has no rows"),
    ],
)
def test_bad_data_errors(edit, message):
    with pytest.raises(BpmDataError, match=message):
        read_dataset(edit(good()), length=4 if "long" in message else None)


def test_error_names_rows_and_counts_them():
    seqs = ["ACGX"] * 8 + GOOD
    frame = table(seqs, [[1, 0, 0]] * len(seqs))
    with pytest.raises(BpmDataError) as info:
        read_dataset(frame)
    text = str(info.value)
    assert "8 rows (0, 1, 2, 3, 4 and 3 more" in text and "'X'" in text


def test_zero_read_rows_set_aside_and_counted():
    frame = good().assign(ct_0=[0, 0, 1, 0, 0, 0], ct_1=[0, 3, 1, 0, 0, 1], ct_2=[0, 0, 1, 4, 0, 0])
    d = read_dataset(frame)
    assert d.summary["zero_read_rows_set_aside"] == 2
    assert len(d) == 4 and "ACGT" not in set(d.sequences)


def test_duplicates_merged_toward_held_out_split():
    frame = table(
        ["ACGT", "ACGT", "ACGT", "GGTT", "GGTT", "CCAA"],
        [[1, 0], [0, 2], [1, 1], [1, 0], [0, 1], [3, 0]],
        ["training", "test", "training", "training", "training", "validation"],
    )
    d = read_dataset(frame)
    assert d.summary["duplicate_rows_merged"] == 3
    assert d.summary["duplicate_split_conflicts"] == 1
    row = list(d.sequences).index("ACGT")
    assert d.counts[row].tolist() == [2, 3] and d.split[row] == "test"
    assert d.counts.sum() == 10  # no read lost


def test_random_split_is_seeded_when_no_split_column():
    frame = table([f"{a}{b}{c}" for a in "ACGT" for b in "ACGT" for c in "ACGT"], [[1, 1]] * 64)
    a = read_dataset(frame, seed=3)
    b = read_dataset(frame, seed=3)
    c = read_dataset(frame, seed=4)
    assert (a.split == b.split).all() and not (a.split == c.split).all()
    assert a.sizes() == {"training": 38, "validation": 13, "test": 13}
    assert "random 60/20/20" in a.summary["split"]


def test_named_columns_tsv_gzip_and_parquet(tmp_path):
    frame = good().rename(columns={"x": "seq", "ct_0": "low", "ct_1": "mid", "ct_2": "high"})
    frame = frame.rename(columns={"set": "fold"})
    options = dict(sequence_column="seq", count_columns=["low", "mid", "high"], split_column="fold")
    frame.to_csv(tmp_path / "t.tsv.gz", sep="\t", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    for name in ("t.tsv.gz", "t.parquet"):
        d = read_dataset(tmp_path / name, **options)
        assert d.counts.tolist()[0] == [1, 0, 2] and d.bin_names == ("low", "mid", "high")


def test_count_columns_sorted_numerically():
    order = [10, 2, 0, 5, 1, 9, 3, 8, 4, 7, 6]
    frame = pd.DataFrame({"x": ["AC", "GT"], **{f"ct_{k}": [1, k] for k in order}})
    assert read_dataset(frame).bin_names == tuple(f"ct_{k}" for k in range(11))


def test_missing_file():
    with pytest.raises(BpmDataError, match="not found"):
        read_dataset("no/such/file.csv")


# ---------------------------------------------------------------- one data path


def test_checks_number_rows_from_first_row():
    """The public checks name rows of the whole table: chunk row + ``first_row``."""
    problems = RowProblems()
    frame = pd.DataFrame({"ct_0": [1, -np.inf, 2, 0.5], "ct_1": [0, 0, None, 1]})
    counts = check_counts(frame, ["ct_0", "ct_1"], problems, first_row=100)
    assert counts.tolist() == [[1, 0], [0, 0], [2, 0], [0, 1]]
    text = str(problems.error())
    # -inf is not also "negative": each bad row is named once, under one problem
    assert "missing or non-numeric counts in 2 rows (101, 102;" in text
    assert "negative" not in text and "fractional counts in 1 row (103;" in text
    assert format_rows([0, 2], first_row=7) == "2 rows (7, 9; 0-based data rows, header excluded)"
    assert format_rows([3, 4, 5, 6, 7], first_row=10, count=9).startswith(
        "9 rows (13, 14, 15, 16, 17 and 4 more;"
    )


def _bad_table():
    """30 rows, bad ones in several 7-row chunks: letters, lengths, counts, split labels."""
    seqs = [f"{a}{b}{c}A" for a in "ACGT" for b in "ACGT" for c in "ACGT"][:30]
    counts = [[1, 0, 2]] * 30
    split = ["training"] * 30
    frame = table(seqs, counts, split)
    frame.loc[[2, 9, 16, 23, 24, 25, 29], "x"] = "ACGN"  # 7 rows: 2 shown past the 5th
    frame.loc[12, "x"] = "ACG"
    frame.loc[[13, 27], "ct_1"] = -1
    frame.loc[20, "ct_2"] = "lots"
    frame.loc[[8, 22], "set"] = ["holdout", "Train"]
    return frame


def test_same_message_in_memory_and_in_chunks(tmp_path):
    """One bad table, read whole and encoded in chunks of 7 rows: the same message, every
    bad row named once by its row in the file, rows beyond the first chunk included."""
    path = tmp_path / "bad.csv"
    _bad_table().to_csv(path, index=False)
    with pytest.raises(BpmDataError) as whole:
        read_dataset(path)
    with pytest.raises(BpmDataError) as chunked:
        encode_file(path, cache_dir=tmp_path, chunk_rows=7)
    assert str(chunked.value) == str(whole.value)
    lines = str(whole.value).splitlines()
    assert lines == [
        "<input>: error: bad read counts: missing or non-numeric counts in 1 row (20; 0-based"
        " data rows, header excluded); negative counts in 2 rows (13, 27; 0-based data rows,"
        " header excluded)",
        "<input>: error: bad sequences: 1 row (12; 0-based data rows, header excluded) not 4"
        " letters long (lengths [3]); letters ['N'] outside the alphabet 'ACGT' in 7 rows"
        " (2, 9, 16, 23, 24 and 2 more; 0-based data rows, header excluded)",
        "<input>: error: bad split labels: split column 'set' has values ['holdout'] in 1 row"
        " (8; 0-based data rows, header excluded); expected one of ['dev', 'test', 'testing',"
        " 'train', 'training', 'val', 'valid', 'validation']",
    ]
    assert not list(tmp_path.glob("bad.csv.*/*"))  # no half-written store left behind


@pytest.mark.parametrize("split_column", ["set", None])
def test_summary_same_in_memory_and_in_chunks(tmp_path, split_column):
    """Zero-read rows, duplicates (across chunks, one under two splits), counts and
    splits: read_dataset and encode_file (7-row chunks) report the same summary."""
    seqs = [f"{a}{b}{c}" for a in "ACGT" for b in "ACGT" for c in "ACGT"][:40]
    seqs += [seqs[1], seqs[3], seqs[30], seqs[3]]
    counts = [[k % 3, 1, 0] for k in range(len(seqs))]
    counts[5] = counts[33] = [0, 0, 0]
    split = [SPLITS[k % 3] for k in range(len(seqs))]
    frame = table(seqs, counts, split)
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    options = dict(split_column=split_column, seed=2)
    whole = read_dataset(path, **options)
    store = encode_file(path, cache_dir=tmp_path, chunk_rows=7, **options)
    summary = {k: v for k, v in store.summary.items() if k != "encoded_seconds"}
    assert summary == whole.summary
    assert whole.summary["zero_read_rows_set_aside"] == 2
    assert whole.summary["duplicate_rows_merged"] == 4
    if split_column:
        assert whole.summary["duplicate_split_conflicts"] == 1  # AAT: training and test
    stored = {
        bytes(store.codes[i]): (store.counts[i].tolist(), name)
        for name, (a, b) in store.ranges.items()
        for i in range(a, b)
    }
    assert stored == {
        bytes(c): (n.tolist(), s)
        for c, n, s in zip(whole.codes, whole.counts, whole.split, strict=True)
    }
