"""Scale (issue 7): the chunked encoder, the streaming fit and the 2-process DDP fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from bpm.cli import main
from bpm.compiler.errors import BpmDataError, BpmError
from bpm.runtime.data import read_dataset
from bpm.runtime.simulate import simulate
from bpm.runtime.stream import encode_file, fit_stream, open_store, wants_stream

LAC = "models/lac.bpm"
# About 280 steps of 512 rows: a few seconds, and a fit worth comparing.
# The polish stopped on the validation reads: run to the training optimum along a flat
# ridge, float reassociation between one and two processes grows over hundreds of
# L-BFGS iterations, and these tests compare the paths step for step.
QUICK = dict(epochs=40, batch_size=512, block_rows=64, quiet=True, threads=1, stop="validation")


@pytest.fixture(scope="module")
def table():
    """A simulated lac table with extra rows the reader must handle: a zero-read row,
    duplicated sequences (one of them under two splits)."""
    frame, _ = simulate(LAC, n=6000, reads=18000, seed=3)
    extra = frame.iloc[[0, 1, 2]].copy()
    extra.loc[extra.index[0], "set"] = "test"  # a split conflict
    zero = frame.iloc[[3]].copy()
    zero["x"] = "A" * 75
    for c in [c for c in frame.columns if c.startswith("ct_")]:
        zero[c] = 0
    return pd.concat([frame, extra, zero], ignore_index=True)


@pytest.fixture(scope="module")
def csv(table, tmp_path_factory):
    path = tmp_path_factory.mktemp("scale") / "lac.csv.gz"
    table.to_csv(path, index=False)
    return path


def _by_sequence(codes, counts, split_of) -> dict:
    return {
        bytes(row): (tuple(int(c) for c in cts), s)
        for row, cts, s in zip(codes, counts, split_of, strict=True)
    }


def test_store_equals_read_dataset(csv, tmp_path):
    """Same sequences, counts, splits and summary as the in-memory reader, in small chunks."""
    store = encode_file(csv, length=75, cache_dir=tmp_path, chunk_rows=1000)
    data = read_dataset(csv, length=75)
    assert store.codes.dtype == np.uint8 and store.counts.dtype == np.uint16
    split_of = np.empty(len(store), dtype=object)
    for name, (a, b) in store.ranges.items():
        split_of[a:b] = name
    ours = _by_sequence(store.codes, store.counts, split_of)
    assert ours == _by_sequence(data.codes, data.counts, data.split)
    for key in (
        "rows_read",
        "reads",
        "zero_read_rows_set_aside",
        "duplicate_rows_merged",
        "duplicate_split_conflicts",
        "sequences",
        "n_training",
        "n_validation",
        "n_test",
    ):
        assert store.summary[key] == data.summary[key], key
    assert store.summary["zero_read_rows_set_aside"] == 1
    assert store.summary["duplicate_rows_merged"] == 3
    # cached: the second call opens the same store
    again = encode_file(csv, length=75, cache_dir=tmp_path, chunk_rows=1000)
    assert again.path == store.path


def test_random_split_equals_read_dataset(table, tmp_path):
    """Without a split column the seeded split is the one read_dataset draws."""
    path = tmp_path / "nosplit.csv"
    table.drop(columns="set").to_csv(path, index=False)
    store = encode_file(path, length=75, split_column=None, seed=5, cache_dir=tmp_path)
    data = read_dataset(path, length=75, split_column=None, seed=5)
    split_of = np.empty(len(store), dtype=object)
    for name, (a, b) in store.ranges.items():
        split_of[a:b] = name
    assert _by_sequence(store.codes, store.counts, split_of) == _by_sequence(
        data.codes, data.counts, data.split
    )


def test_errors_name_rows_of_the_whole_file(table, tmp_path):
    """Bad rows past the first chunk are named by their rows in the file, once each, in
    the same message as read_dataset's."""
    bad = table.copy()
    bad.loc[2500, "x"] = "N" * 75
    bad.loc[4100, "ct_3"] = -1
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(BpmDataError) as chunked:
        encode_file(path, length=75, cache_dir=tmp_path, chunk_rows=1000)
    with pytest.raises(BpmDataError) as whole:
        read_dataset(path, length=75)
    text = str(chunked.value)
    assert text == str(whole.value)
    assert text.count("error:") == 2 and text.count("2500") == text.count("4100") == 1
    assert "negative counts in 1 row (4100; 0-based data rows" in text
    assert "letters ['N'] outside the alphabet 'ACGT' in 1 row (2500; 0-based data rows" in text
    with pytest.raises(BpmDataError, match="not found"):
        encode_file(tmp_path / "missing.csv", cache_dir=tmp_path)


def test_stream_threshold(csv, monkeypatch):
    assert not wants_stream(csv)
    assert not wants_stream(pd.DataFrame())
    monkeypatch.setenv("BPM_STREAM", "1")
    assert wants_stream(csv)


@pytest.fixture(scope="module")
def single(csv, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return cache, fit_stream(LAC, csv, seed=0, cache_dir=cache, **QUICK)


def test_stream_fit_learns_and_is_deterministic(csv, single):
    cache, result = single
    assert result.metrics["validation"]["I_var_bits"] > 0.1
    assert result.data_summary["training"]["mode"] == "stream"
    again = fit_stream(LAC, open_store(result.data_summary["training"]["store"]), seed=0, **QUICK)
    for name, value in result.params().items():
        assert torch.equal(value, again.params()[name]), name
    other = fit_stream(LAC, csv, seed=1, cache_dir=cache, **QUICK)
    assert not torch.equal(other.params()["G_R"], result.params()["G_R"])


def test_device_is_threaded_through(csv, single):
    cache, _ = single
    result = fit_stream(LAC, csv, device="cpu", cache_dir=cache, max_steps=3, **QUICK)
    assert all(p.device.type == "cpu" for p in result.module.parameters())
    if not torch.cuda.is_available():
        with pytest.raises(BpmError, match="no CUDA device"):
            fit_stream(LAC, csv, device="cuda", cache_dir=cache, **QUICK)


def test_cli_stream(csv, tmp_path, capsys):
    out = tmp_path / "fit"
    argv = ["fit", LAC, str(csv), "--stream", "--epochs", "1", "--batch-size", "2048"]
    assert main([*argv, "--cache-dir", str(tmp_path), "--quiet", "--no-plots", "-o", str(out)]) == 0
    assert (out / "summary.json").exists() and (out / "model.pt").exists()


def test_two_process_ddp_equals_one_process(csv, single):
    """gloo on 127.0.0.1, two processes, each reading its half of every batch's blocks:
    the same steps as one process on the whole batch, up to float reassociation.

    Tolerance: parameters within 1e-4 (kT) and validation NLL within 1e-5 bits after
    ~280 Adam steps of 512 rows (measured: ~1e-7).
    """
    from bpm.runtime.distributed import spawn_fit

    cache, one = single
    two = spawn_fit(LAC, str(csv), 2, seed=0, cache_dir=str(cache), **QUICK)
    assert two.steps == one.steps
    assert two.data_summary["training"]["processes"] == 2
    assert abs(two.metrics["validation"]["nll"] - one.metrics["validation"]["nll"]) < 1e-5
    for name, value in one.params().items():
        np.testing.assert_allclose(two.params()[name].numpy(), value.numpy(), atol=1e-4)


def test_fit_streams_big_files(csv, single, monkeypatch):
    """fit() hands a data file over the threshold (here forced) to the streaming fit."""
    from bpm.runtime import fit

    monkeypatch.setenv("BPM_STREAM", "1")
    result = fit(LAC, str(csv), quiet=True)
    assert result.data_summary["training"]["mode"] == "stream"
    assert result.metrics["test"]["I_var_bits"] > 0.1
