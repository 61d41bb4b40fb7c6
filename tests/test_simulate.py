"""Simulated sort-seq experiments: layout, determinism, library, sort, reads, truth files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bpm.cli.simulate_command import run_simulate
from bpm.compiler import load
from bpm.compiler.errors import BpmDataError, BpmError
from bpm.runtime.simulate import (
    decode,
    encode,
    outputs,
    read_params,
    simulate,
    zero_mean_gauge,
)

ROOT = Path(__file__).resolve().parents[1]
LAC = ROOT / "models" / "lac.bpm"
OPEN = ROOT / "models" / "open_complex.bpm"
WILD_TYPE = (ROOT / "data" / "kinney2010" / "wild_type.txt").read_text().strip()


@pytest.fixture(scope="module")
def lac_sim():
    return simulate(LAC, n=20_000, wild_type=WILD_TYPE, mutation_rate=0.1, seed=3)


def test_same_seed_same_table_other_seed_other_table():
    a, ta = simulate(LAC, n=3000, seed=7)
    b, tb = simulate(LAC, n=3000, seed=7)
    c, _ = simulate(LAC, n=3000, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert ta.scalars() == tb.scalars()
    assert not a["x"].equals(c["x"])


def test_layout_is_what_the_reader_reads(lac_sim):
    from bpm.runtime.data import read_dataset

    table, _ = lac_sim
    assert list(table.columns) == ["x"] + [f"ct_{k}" for k in range(10)] + ["set"]
    assert table["x"].is_unique
    assert (table.filter(like="ct_").sum(axis=1) > 0).all()
    data = read_dataset(table, length=75)
    assert len(data) == len(table)
    assert data.summary["duplicate_rows_merged"] == 0
    assert data.summary["zero_read_rows_set_aside"] == 0
    sizes = data.sizes()
    assert abs(sizes["training"] / len(data) - 0.6) < 0.01
    assert abs(sizes["test"] / len(data) - 0.2) < 0.01


def test_mutation_rate_is_respected(lac_sim):
    table, truth = lac_sim
    codes = encode(table["x"], "ACGT")
    wt = encode([WILD_TYPE], "ACGT")[0]
    assert truth.meta["wild_type"] == WILD_TYPE
    assert abs((codes != wt).mean() - 0.1) < 0.003
    # substitutions go to the other three letters equally
    changed = codes[codes != wt[None, :].repeat(len(codes), 0)]
    assert len(changed) > 1000


def test_read_totals_and_bins(lac_sim):
    table, truth = lac_sim
    counts = table.filter(like="ct_").to_numpy()
    assert counts.sum() == truth.meta["reads"] == 20_000
    assert (counts.sum(axis=0) == 2000).all()  # reads split equally among bins
    few, _ = simulate(LAC, n=1000, reads=12_345, bins=4, seed=1)
    per_bin = few.filter(like="ct_").to_numpy().sum(axis=0)
    assert per_bin.sum() == 12_345 and per_bin.max() - per_bin.min() <= 1
    # with many reads per cell, duplicate cells of one sequence are merged
    assert few.filter(like="ct_").to_numpy().sum(axis=1).max() > 1


def test_bins_are_quantiles_of_expression():
    """Without noise, each bin holds a contiguous, equal-sized slice of the ranked outputs."""
    table, truth = simulate(LAC, n=5000, reads=200_000, noise=0.0, bins=5, seed=2)
    module = load(LAC)().double()
    module.set_params({k: torch.as_tensor(v) for k, v in truth.params.items()})
    t = outputs(module, encode(table["x"], "ACGT"))
    counts = table.filter(like="ct_").to_numpy()
    assert ((counts > 0).sum(axis=1) == 1).all()  # noise-free: one bin per sequence
    bin_of = counts.argmax(axis=1)
    for k in range(4):
        assert t[bin_of == k].max() <= t[bin_of == k + 1].min()
    sizes = np.bincount(bin_of, minlength=5)
    assert sizes.min() > 0.9 * sizes.max()  # nearly every cell read; equal cells per bin
    edges = np.array(truth.meta["bin_edges_log_t"])
    assert np.all(np.diff(edges) > 0)


def test_noise_spreads_one_sequence_over_bins():
    table, _ = simulate(LAC, n=200, wild_type=WILD_TYPE, mutation_rate=0.0, seed=0, noise=1.0)
    assert len(table) == 1  # every cell carries the wild type: one merged row
    counts = table.filter(like="ct_").to_numpy()[0]
    assert counts.sum() == 200 and (counts > 0).sum() >= 8


def test_truth_is_gauge_fixed_and_reproduces_the_outputs(lac_sim):
    table, truth = lac_sim
    for name in ("G_C", "G_R"):
        assert np.allclose(truth.params[name].mean(axis=1), 0.0)
    module = load(LAC)().double()
    module.set_params({k: torch.as_tensor(v) for k, v in truth.params.items()})
    t = outputs(module, encode(table["x"][:500], "ACGT"))
    assert np.isfinite(t).all() and (t > 0).all()
    # offsets put the median site energy at 1 kT: intermediate occupancy
    with torch.no_grad():
        energies = module.energies(torch.as_tensor(encode(table["x"], "ACGT"), dtype=torch.long))
    assert abs(float(energies["G_R"].median()) - 1.0) < 0.2


def test_gauge_keeps_energies():
    module = load(LAC)().double()
    rng = np.random.default_rng(0)
    raw = {"G_C": rng.normal(size=(26, 4)) + 3.0, "G_C.offset": 0.5}
    fixed = zero_mean_gauge(raw, module)
    x = torch.as_tensor(encode(decode(rng.integers(0, 4, (50, 75)), "ACGT"), "ACGT")).long()
    module.set_params({k: torch.as_tensor(v) for k, v in raw.items()})
    before = module.energies(x)["G_C"].detach()
    module.set_params({k: torch.as_tensor(v) for k, v in fixed.items()})
    assert torch.allclose(before, module.energies(x)["G_C"].detach())


def test_given_params_override_random_ones():
    given = {"G_I": -3.0, "t_sat": 2.5, "G_R": np.ones((41, 4)) * np.arange(4)}
    _, truth = simulate(LAC, n=500, params=given, seed=0)
    assert truth.params["G_I"] == -3.0 and truth.params["t_sat"] == pytest.approx(2.5)
    assert np.allclose(truth.params["G_R"], np.arange(4) - 1.5)
    with pytest.raises(BpmDataError, match="unknown parameter"):
        simulate(LAC, n=10, params={"G_X": 1.0})


def test_cli_writes_data_and_truth_and_truth_round_trips(tmp_path, capsys):
    out = tmp_path / "sim" / "data.csv.gz"
    code = run_simulate(str(LAC), str(out), n=4000, wild_type=WILD_TYPE, mutation_rate=0.12, seed=5)
    assert code == 0
    assert "unique sequences" in capsys.readouterr().err
    doc = json.loads((tmp_path / "sim" / "data.truth.json").read_text())
    assert doc["model"] == "lac"
    assert set(doc["params"]) == {"G_C.offset", "G_R.offset", "G_I", "t_sat"}
    assert doc["simulation"]["mutation_rate"] == 0.12
    for name, start, width in (("G_C", 1, 26), ("G_R", 34, 41)):  # lac: x[1:27], x[34:75]
        frame = pd.read_csv(tmp_path / "sim" / "data.truth" / f"{name}_kT.csv")
        columns = ["position", "A", "C", "G", "T", "numbered_position"]  # lac: -75 to -1
        assert list(frame.columns) == columns and len(frame) == width
        assert frame["position"].tolist() == list(range(start, start + width))  # as params/
        assert (frame["numbered_position"] == frame["position"] - 75).all()
    table = pd.read_csv(out)
    # the written truth, given back, reproduces the same experiment
    module = load(LAC)()
    params = read_params(tmp_path / "sim" / "data.truth.json", module)
    again, truth = simulate(
        LAC, n=4000, wild_type=WILD_TYPE, mutation_rate=0.12, seed=5, params=params
    )
    assert table.equals(again)
    assert np.allclose(truth.params["G_R"], params["G_R"], atol=1e-5)


def test_wild_type_from_a_file_or_a_table_consensus(tmp_path):
    _, truth = simulate(LAC, n=10, wild_type=str(ROOT / "data/kinney2010/wild_type.txt"))
    assert truth.meta["wild_type"] == WILD_TYPE
    _, truth = simulate(LAC, n=10, wild_type=str(ROOT / "data/lac_sortseq_kinney2010.csv.gz"))
    assert truth.meta["wild_type"] == WILD_TYPE
    with pytest.raises(BpmDataError, match="wild type has 5 letters"):
        simulate(LAC, n=10, wild_type="ACGTA")


def test_kinetic_model_simulates():
    table, truth = simulate(OPEN, n=3000, seed=1)
    assert set(truth.params) == {"G_R", "G_R.offset", "k_on", "k_off", "k_open", "k_init"}
    assert all(truth.params[k] > 0 for k in ("k_on", "k_off", "k_open", "k_init"))
    assert table.filter(like="ct_").to_numpy().sum() == 3000


def test_a_model_without_a_sequence_is_refused():
    from bpm.compiler.errors import BpmError

    with pytest.raises(BpmError, match="no sequence"):
        simulate(ROOT / "models" / "michaelis_menten.bpm", n=10)


# An output `a` declared before `t`: simulation, like fitting, must use `t`.
A_BEFORE_T = """model a_before_t
sequence x: dna[10]
energy G = matrix(x[0:10])
thermodynamic {
    empty : 0
    bound : G
}
output a = P(empty)
output t = P(bound)
"""


def test_a_model_declaring_a_before_t_is_simulated_and_analyzed_on_t():
    from bpm.runtime.measurement import OrdinalMeasurement
    from bpm.runtime.uncertainty import hessian

    cls = load(A_BEFORE_T)
    table, truth = simulate(cls, n=1500, seed=4, mutation_rate=0.2)
    on_t, _ = simulate(cls, n=1500, seed=4, mutation_rate=0.2, output="t")
    on_a, truth_a = simulate(cls, n=1500, seed=4, mutation_rate=0.2, output="a")
    assert truth.meta["output"] == "t" and truth_a.meta["output"] == "a"
    pd.testing.assert_frame_equal(table, on_t)
    assert not table.equals(on_a)  # P(empty) sorts the cells the other way round

    module = cls().double()
    module.set_params({k: torch.as_tensor(v) for k, v in truth.params.items()})
    measurement = OrdinalMeasurement(10, hidden=0, floor=0.0).double()
    codes = encode(table["x"], "ACGT")
    counts = table.filter(like="ct_").to_numpy()
    x, c = torch.as_tensor(codes).long(), torch.as_tensor(counts).double()

    def plain(name):
        def nll(m, q):
            return -(c * q.log_probs(m(x)[name])).sum()

        return hessian(module, measurement, nll=nll)[0]

    analyzed = hessian(module, measurement, (codes, counts))[0]
    scale = np.abs(plain("t")).max()
    assert np.abs(analyzed - plain("t")).max() < 1e-8 * scale
    assert np.abs(analyzed - plain("a")).max() > 1e-3 * scale
    chosen = hessian(module, measurement, (codes, counts), output="a")[0]
    assert np.abs(chosen - plain("a")).max() < 1e-8 * scale


def test_several_outputs_and_none_named_t_must_be_chosen():
    cls = load(A_BEFORE_T.replace("output t", "output b"))
    with pytest.raises(BpmError, match="output="):
        simulate(cls, n=100, seed=0)
    _, truth = simulate(cls, n=100, seed=0, output="b")
    assert truth.meta["output"] == "b"


def test_floor_and_background_default_to_todays_table_and_are_recorded():
    plain, truth = simulate(LAC, n=3000, wild_type=WILD_TYPE, seed=4)
    same, _ = simulate(LAC, n=3000, wild_type=WILD_TYPE, seed=4, floor=0.0, background=0.0)
    pd.testing.assert_frame_equal(plain, same)
    assert truth.meta["floor"] == 0.0 and truth.meta["background"] == 0.0
    mixed, mixed_truth = simulate(
        LAC, n=3000, wild_type=WILD_TYPE, seed=4, floor=0.5, background=0.3
    )
    assert mixed_truth.meta["floor"] == 0.5 and mixed_truth.meta["background"] == 0.3
    assert not plain.equals(mixed)
    with pytest.raises(BpmDataError, match="background"):
        simulate(LAC, n=100, wild_type=WILD_TYPE, background=1.0)
    with pytest.raises(BpmDataError, match="floor"):
        simulate(LAC, n=100, wild_type=WILD_TYPE, floor=-1.0)


def test_background_cells_land_in_bins_regardless_of_t():
    """With every cell background, a sequence's mean bin no longer follows its t."""
    table, truth = simulate(LAC, n=20_000, wild_type=WILD_TYPE, seed=2, background=0.999)
    module = load(LAC)()
    module.set_params({k: torch.as_tensor(np.asarray(v)) for k, v in truth.params.items()})
    t = outputs(module.double(), encode(table["x"].tolist(), module.alphabet))
    counts = table.filter(like="ct_").to_numpy()
    mean_bin = (counts * np.arange(10)).sum(1) / counts.sum(1)
    assert abs(np.corrcoef(np.log(t), mean_bin)[0, 1]) < 0.05


def test_simulate_from_a_fitted_measurement_process(tmp_path):
    from bpm.runtime import fit

    table, truth = simulate(LAC, n=3000, wild_type=WILD_TYPE, mutation_rate=0.115, seed=6)
    gates = truth.meta["bin_edges_log_t"]
    fit(LAC, table, link="affine", gates=gates, steps=20, polish=0, quiet=True).save(
        tmp_path / "fit", plots=False
    )
    run_simulate(
        str(LAC), str(tmp_path / "again.csv"), n=4000, measurement_from=str(tmp_path / "fit")
    )
    doc = json.loads((tmp_path / "again.truth.json").read_text())["simulation"]
    assert doc["measurement_from"] == str(tmp_path / "fit")
    assert doc["measurement"]["config"]["kind"] == "affine"
    assert doc["bin_edges_log_t"] == pytest.approx(gates, rel=1e-6)
    again = pd.read_csv(tmp_path / "again.csv")
    assert again.filter(like="ct_").to_numpy().sum() == 4000
