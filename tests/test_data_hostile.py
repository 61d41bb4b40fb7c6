"""Hostile tables on the data path (issue 16 "Data path", issue 15 data bullets): counts
that would wrap, custom alphabets, count columns named twice or with gaps, dates as
counts, tables without validation or test rows, and what predict accepts."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from bpm.compiler.errors import BpmDataError, BpmError
from bpm.runtime.data import MAX_READS, SPLITS, read_dataset
from bpm.runtime.letters import encode
from bpm.runtime.predict import sequences_of
from bpm.runtime.store import encode_file

SEQS = ["ACGT", "AACC", "GGTT", "TTAA", "CAGT", "GATC"]
SPLIT = ["training", "training", "validation", "test", "training", "validation"]


def frame(seqs=SEQS, counts=None, split=SPLIT, **columns):
    counts = counts if counts is not None else [[1, 2]] * len(seqs)
    out = pd.DataFrame({"x": seqs})
    for k, column in enumerate(np.asarray(counts, dtype=object).T):
        out[f"ct_{k}"] = column
    if split is not None:
        out["set"] = split[: len(seqs)]
    return out.assign(**columns)


def both(path, tmp_path, **options):
    """read_dataset and encode_file (2-row chunks) on one file: the same error text."""
    with pytest.raises(BpmDataError) as whole:
        read_dataset(path, **options)
    with pytest.raises(BpmDataError) as chunked:
        encode_file(path, cache_dir=tmp_path / "cache", chunk_rows=2, **options)
    # the store holds up to 2^32 - 1 reads a cell, memory 2^53: otherwise the same text
    limit = re.compile(r"over \d+ in")
    assert limit.sub("over N in", str(whole.value)) == limit.sub("over N in", str(chunked.value))
    return str(whole.value)


# ---------------------------------------------------------------- counts that would wrap


@pytest.mark.parametrize(
    "cell, rows",
    [("9223372036854775808", "1 row (2;"), ("1e20", "1 row (2;"), ("18446744073709551615", "(2;")],
)
def test_counts_beyond_what_a_count_holds_are_refused_with_the_row(tmp_path, cell, rows):
    path = tmp_path / "big.csv"
    frame().to_csv(path, index=False)
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace(",1,", f",{cell},", 1)
    path.write_text("\n".join(lines) + "\n")
    message = both(path, tmp_path)
    assert "read counts over" in message and rows in message


def test_two_huge_cells_in_a_row_are_refused():
    big = 2**62
    with pytest.raises(BpmDataError, match=r"read counts over 9007199254740992 in 1 row \(1;"):
        read_dataset(frame(counts=[[1, 2], [big, big]] + [[1, 1]] * 4))
    half = 3 * 2**51  # each cell below 2^53, their sum above
    table = frame(counts=[[1, 2], [half, half]] + [[1, 1]] * 4)
    with pytest.raises(BpmDataError, match=r"more than 9007199254740992 reads in one row in 1 row"):
        read_dataset(table)
    with pytest.raises(BpmDataError, match=r"read counts over 9007199254740992 in 1 row \(1;"):
        read_dataset(frame(counts=[[1, 2], [MAX_READS + 2, 0]] + [[1, 1]] * 4))


def test_big_uint64_in_parquet_is_refused(tmp_path):
    pytest.importorskip("pyarrow")
    table = frame()
    table["ct_0"] = np.array([1, 2, 3, 2**63 + 5, 1, 1], dtype=np.uint64)
    table.to_parquet(tmp_path / "t.parquet")
    message = both(tmp_path / "t.parquet", tmp_path)
    assert "read counts over" in message and "1 row (3;" in message


def test_counts_up_to_the_limit_are_kept_exactly():
    table = frame(counts=[[MAX_READS - 1, 0]] + [[1, 1]] * 5)
    d = read_dataset(table)
    assert d.counts[0, 0] == MAX_READS - 1 and d.summary["reads"] == MAX_READS - 1 + 10


def test_datetime_count_columns_are_refused(tmp_path):
    table = frame(ct_1=pd.date_range("2020-01-01", periods=6))
    with pytest.raises(BpmDataError, match="count column 'ct_1' holds datetime64"):
        read_dataset(table)
    pytest.importorskip("pyarrow")
    table.to_parquet(tmp_path / "d.parquet")
    assert "holds datetime64" in both(tmp_path / "d.parquet", tmp_path)


# ---------------------------------------------------------------- alphabets


def test_binary_alphabet_keeps_leading_zeros(tmp_path):
    seqs = ["0011", "0101", "1100", "0001", "1000", "0110"]
    path = tmp_path / "bin.csv"
    frame(seqs).to_csv(path, index=False)
    for d in (
        read_dataset(path, alphabet="01"),
        encode_file(path, alphabet="01", cache_dir=tmp_path),
    ):
        codes = d.codes if isinstance(d.codes, np.ndarray) else np.asarray(d.codes)
        assert sorted(map(tuple, codes.tolist())) == sorted(tuple(map(int, s)) for s in seqs)


def test_lower_case_alphabet_accepts_either_case():
    d = read_dataset(frame(["xyxy", "XYYX", "yyxx", "xXyY", "yxyx", "XXXX"]), alphabet="xy")
    assert list(d.sequences) == ["xyxy", "xyyx", "yyxx", "xxyy", "yxyx", "xxxx"]
    assert d.codes[1].tolist() == [0, 1, 1, 0]


def test_an_alphabet_with_both_cases_honours_case():
    seqs = ["AaAa", "aAaA", "AAAA", "aaaa", "AAaa", "aaAA"]
    d = read_dataset(frame(seqs), alphabet="Aa")
    assert len(d) == 6 and d.summary["duplicate_rows_merged"] == 0
    assert d.codes[0].tolist() == [0, 1, 0, 1] and d.codes[3].tolist() == [1, 1, 1, 1]
    with pytest.raises(BpmDataError, match=r"letters \['B'\] outside the alphabet 'Aa'"):
        read_dataset(frame(["AaAB", *seqs[1:]]), alphabet="Aa")


def test_non_ascii_letters_are_letters():
    seqs = ["αβαβ", "ββαα", "αααα", "ββββ", "αββα", "βααβ"]
    d = read_dataset(frame(seqs), alphabet="αβ")
    assert d.codes[0].tolist() == [0, 1, 0, 1]
    with pytest.raises(BpmDataError, match=r"letters \['é'\] outside the alphabet 'ACGT'"):
        read_dataset(frame(["ACGé", *SEQS[1:]]))
    assert encode(["αé"], "αβ").tolist() == [[0, 255]]


def test_a_question_mark_in_the_alphabet_is_no_wildcard():
    with pytest.raises(BpmDataError, match=r"letters \['é', '中'\] outside the alphabet 'AC\?'"):
        read_dataset(frame(["A?Cé", "中AC?", "AAAA", "CCCC", "????", "AC?A"]), alphabet="AC?")
    assert read_dataset(frame(["A?C?", "??AA", "AAAA", "CCCC", "????", "AC?A"]), alphabet="AC?")


def test_braces_in_names_and_alphabets_do_not_break_messages():
    with pytest.raises(BpmDataError, match=r"letters \['A'\] outside the alphabet '\{\}'"):
        read_dataset(frame(["{}{A", "{{}}", "}}}}", "{{{{", "{}{}", "}{}{"]), alphabet="{}")


# ---------------------------------------------------------------- count columns


def test_a_count_column_named_twice_is_refused():
    with pytest.raises(BpmDataError, match=r"\['ct_0'\] named twice"):
        read_dataset(frame(), count_columns=["ct_0", "ct_0"])


def test_two_columns_for_one_bin_are_refused():
    with pytest.raises(BpmDataError, match="columns ct_01 and ct_1 are both bin 1|ct_1 and ct_01"):
        read_dataset(frame(ct_01=[0] * 6, ct_1=[1] * 6))


def test_columns_named_twice_in_a_frame_are_refused():
    table = pd.concat([frame(), frame()[["ct_1"]]], axis=1)
    with pytest.raises(BpmDataError, match=r"two or more columns named \['ct_1'\]"):
        read_dataset(table)


def test_a_gap_in_the_bin_numbers_is_reported():
    table = frame().rename(columns={"ct_1": "ct_2"})
    with pytest.raises(BpmDataError, match="skip 1 bin.*ct_1 not in the table.*--counts"):
        read_dataset(table)
    assert read_dataset(table, count_columns=["ct_0", "ct_2"]).bin_names == ("ct_0", "ct_2")


def test_column_sequence_and_count_problems_come_in_one_message(tmp_path):
    table = frame(["ACGN", *SEQS[1:]], counts=[[1, -1]] + [[1, 1]] * 5)
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    message = both(path, tmp_path)
    assert "bad read counts: negative counts in 1 row (0;" in message
    assert "bad sequences: letters ['N']" in message
    missing = table.drop(columns=["ct_0", "ct_1"])
    with pytest.raises(BpmDataError) as info:
        read_dataset(missing)
    lines = str(info.value).splitlines()
    assert len(lines) == 2 and "no count columns" in lines[0] and "letters ['N']" in lines[1]


# ---------------------------------------------------------------- splits


def test_validation_is_carved_from_training_when_the_split_has_none(tmp_path):
    seqs = [f"{a}{b}{c}" for a in "ACGT" for b in "ACGT" for c in "ACGT"]
    split = ["training" if k % 4 else "test" for k in range(64)]
    path = tmp_path / "tv.csv"
    frame(seqs, split=split).to_csv(path, index=False)
    d = read_dataset(path, seed=1)
    assert d.sizes() == {"training": 36, "validation": 12, "test": 16}  # a quarter of 48
    carved = d.summary["validation_carved"]
    assert carved == {"from": "training", "rows": 12, "share": 0.25, "seed": 1}
    assert "12 training rows (25%) were drawn as validation (seed 1)" in d.summary["split"]
    assert read_dataset(path, seed=1).split.tolist() == d.split.tolist()  # seeded
    assert read_dataset(path, seed=2).split.tolist() != d.split.tolist()
    assert set(d.subset("test").sequences) == {
        s for s, t in zip(seqs, split, strict=True) if t == "test"
    }
    store = encode_file(path, seed=1, cache_dir=tmp_path)
    assert {k: v for k, v in store.summary.items() if k != "encoded_seconds"} == d.summary
    kept = read_dataset(path, carve_validation=False)
    assert kept.sizes()["validation"] == 0 and "validation_carved" not in kept.summary


def test_no_test_rows_is_noted_and_json_safe():
    d = read_dataset(frame(split=["training", "validation"] * 3))
    assert d.summary["empty_splits"] == ["test"]
    assert d.summary["notes"] == ["no test rows: the test metrics are null"]
    json.dumps(d.summary, allow_nan=False)
    assert "validation_carved" not in d.summary and set(SPLITS) - {"test"} <= set(d.split)


# ---------------------------------------------------------------- what predict accepts


def test_predict_takes_frames_series_and_lists():
    table = pd.DataFrame({"set": ["a", "b"], "sequence": ["ACGT", "TTTT"]})
    assert sequences_of(table) == ["ACGT", "TTTT"]
    assert sequences_of(table.rename(columns={"sequence": "x"})["x"]) == ["ACGT", "TTTT"]
    assert sequences_of(["AC", "GT"]) == ["AC", "GT"] and sequences_of("ACGT") == ["ACGT"]
    with pytest.raises(BpmError, match="no column named x, sequence, seq"):
        sequences_of(table.drop(columns=["sequence"]))
    with pytest.raises(BpmError, match="sequence 1 is missing"):
        sequences_of(pd.Series(["ACGT", None]))
    shifted = pd.Series(["ACGT", "TTTT"], index=[7, 3])  # labels are not positions
    assert sequences_of(shifted) == ["ACGT", "TTTT"]


# ---------------------------------------------------------------- end to end

BINARY = """model custom_alphabet
sequence s: "01"[12]
energy G = matrix(s[0:12])
thermodynamic { off : 0   on : G }
output t = P(on)
"""


@pytest.mark.parametrize("alphabet", ['"01"', '"xy"'])
def test_the_docs_binary_model_fits_its_own_simulated_file(tmp_path, alphabet):
    """docs/language.md's binary example (and a lower-case alphabet), simulated, written
    to CSV, read back and fitted: leading zeros and lower case survive the file."""
    from bpm.runtime import fit
    from bpm.runtime.simulate import simulate

    model = BINARY.replace('"01"', alphabet)
    table, _ = simulate(model, n=600, bins=4, seed=3, mutation_rate=0.3)
    path = tmp_path / "sim.csv"
    table.to_csv(path, index=False)
    letters = alphabet.strip('"')
    if letters == "01":
        assert path.read_text().splitlines()[1].split(",")[0].startswith(("0", "1"))
    d = read_dataset(path, alphabet=letters, length=12)
    assert d.summary["rows_read"] == len(table) and set("".join(d.sequences)) <= set(letters)
    assert sorted(d.sequences) == sorted(set(table["x"][table.filter(like="ct_").sum(axis=1) > 0]))
    result = fit(model, str(path), steps=3, polish=0, quiet=True)
    assert np.isfinite(result.metrics["validation"]["nll"])


@pytest.mark.parametrize("name", ["letters", "row_problems"])
def test_docstring_examples_run(name):
    import doctest
    import importlib

    module = importlib.import_module(f"bpm.runtime.{name}")
    failed, tried = doctest.testmod(module)
    assert tried > 0 and failed == 0
