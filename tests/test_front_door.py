"""The front door (issue 11): the model file is obeyed, options reach every path or are
reported, one output rule, one options record."""

from __future__ import annotations

import argparse
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import torch

from bpm.compiler import __version__, load
from bpm.compiler.errors import BpmError
from bpm.runtime import contract
from bpm.runtime.fit import execution_path, fit
from bpm.runtime.load import load_fit
from bpm.runtime.option_flags import add_arguments, command_flags, from_arguments
from bpm.runtime.options import FitOptions
from bpm.runtime.simulate import simulate
from bpm.runtime.start import start_module

QUICK = dict(steps=30, polish=0, quiet=True)

SITES = """
model fixed_and_init
sequence x: dna[12]
energy G_C = matrix(x[0:6])
energy G_I = -3.0 kcal/mol
energy G_J init 1.5
param  S = 2.5
param  Gmax > 0
param  k > 0 init 3
thermodynamic {
    empty : 0
    a     : G_C + G_I
    b     : G_C + G_J
}
output t = Gmax * S * k * (P(a) + P(b))
"""


@pytest.fixture(scope="module")
def table():
    frame, _ = simulate(SITES, n=1500, reads=6000, seed=2)
    return frame


def test_starting_values_come_from_the_model_file():
    module = load(SITES)()
    torch.manual_seed(0)
    start_module(module)
    got = module.get_params()
    assert float(got["G_J"]) == pytest.approx(1.5)
    assert float(got["k"]) == pytest.approx(3.0)
    assert float(got["S"]) == pytest.approx(2.5)
    assert float(got["G_I"]) * module.kT_kcal_per_mol == pytest.approx(-3.0, abs=1e-6)
    assert float(got["Gmax"]) == pytest.approx(1.0)  # the compiled default of a > 0 param
    assert float(got["G_C.offset"]) == 0.0


def test_a_literature_init_is_where_the_fit_starts():
    module = load("models/activated_repressed.bpm")()
    start_module(module)
    assert float(module.get_params()["G_CP"]) == pytest.approx(-3.0)


def test_a_learned_energy_without_init_starts_at_the_documented_default():
    module = load("models/lac.bpm")()
    start_module(module)
    assert float(module.get_params()["G_I"]) == contract.ENERGY_START


def test_fixed_values_survive_the_fit_and_a_positive_param_named_G_fits(table):
    result = fit(SITES, table, **QUICK)
    params = result.params()
    assert float(params["S"]) == pytest.approx(2.5)
    assert float(params["G_I"]) * result.kT_kcal_per_mol == pytest.approx(-3.0, abs=1e-6)
    assert float(params["Gmax"]) > 0
    assert np.isfinite(result.metrics["validation"]["nll"])


def test_a_fixed_energy_is_reported_exactly_as_written(table, tmp_path):
    import json

    result = fit(SITES, table, **QUICK)
    result.save(tmp_path / "fit", plots=False)
    params = json.loads((tmp_path / "fit" / "summary.json").read_text())["params"]
    assert params["G_I_kcal_per_mol"] == -3.0
    assert params["S"] == 2.5


def test_caller_init_overrides_the_file_and_unknown_names_are_errors(table):
    module = load(SITES)()
    start_module(module, {"G_J": -2.0})
    assert float(module.get_params()["G_J"]) == pytest.approx(-2.0)
    with pytest.raises(BpmError, match="not parameters of the model"):
        start_module(module, {"G_X": 1.0})
    with pytest.raises(BpmError, match="must be > 0"):
        start_module(module, {"Gmax": -1.0})


TWO_OUTPUTS = """
model two_outputs
sequence x: dna[8]
energy G = matrix(x[0:8])
param  a_max > 0
thermodynamic {
    empty : 0
    bound : G
}
output a = a_max * P(empty)
output t = a_max * P(bound)
"""


def test_one_output_rule():
    cls = load(TWO_OUTPUTS)
    assert contract.choose_output(cls) == "t"
    assert contract.choose_output(cls, "a") == "a"
    with pytest.raises(BpmError, match="no output 'b'"):
        contract.choose_output(cls, "b")


def test_unknown_options_are_errors_and_unused_ones_are_reported():
    with pytest.raises(BpmError, match="unknown fit option"):
        FitOptions.build(stepz=3)
    options = FitOptions.build(polish=50, block_rows=1024)
    assert any("block_rows" in note for note in options.notes("full"))
    assert options.notes("stream") == []  # the minibatch path polishes too
    assert FitOptions.build().notes("full") == []


def test_options_reach_the_streaming_path(table, tmp_path, monkeypatch):
    """A big file goes to the minibatch path with every option it was given."""
    path = tmp_path / "big.csv"
    table.to_csv(path, index=False)
    monkeypatch.setenv("BPM_STREAM", "1")
    options = FitOptions.build(
        steps=7,
        lr=0.01,
        eval_every=3,
        patience=50,
        polish=0,
        quiet=True,
        batch_size=64,
        block_rows=16,
        cache_dir=str(tmp_path),
    )
    assert execution_path(str(path), options) == "stream"
    result = fit(SITES, str(path), options)
    assert result.data_summary["training"]["mode"] == "stream"
    assert result.steps == 7
    assert [row["step"] for row in result.history] == [3, 6, 7]
    polished = fit(SITES, str(path), options.replace(polish=10))
    assert [stage["stage"] for stage in polished.stages] == ["adam", "lbfgs"]
    assert polished.stages[1]["iterations"] <= 10


def test_full_and_minibatch_paths_share_the_defaults():
    options = FitOptions()
    assert (options.lr, options.patience, options.restandardize_at) == (0.07, 6, 0.25)


def test_steps_count_optimizer_iterations(table):
    result = fit(SITES, table, steps=20, polish=10, quiet=True)
    assert result.steps == sum(stage["iterations"] for stage in result.stages)
    assert [stage["stage"] for stage in result.stages] == ["adam", "lbfgs"]
    assert all(stage["stopped"] for stage in result.stages)


def test_a_dataframe_is_never_streamed():
    assert execution_path(pd.DataFrame(), FitOptions()) == "full"


def test_a_fit_says_whether_it_converged(table, tmp_path):
    import json

    short = fit(SITES, table, **QUICK)
    assert short.convergence["converged"] is False
    assert short.convergence["gradient_norm"] > 1e-4
    assert short.convergence["stopped"] == short.stages[-1]["stopped"]
    assert any("not converged" in note for note in short.notes)
    short.save(tmp_path / "fit", plots=False)
    saved = json.loads((tmp_path / "fit" / "summary.json").read_text())
    assert saved["convergence"]["converged"] is False
    assert any("not converged" in note for note in saved["notes"])


def test_gates_from_a_list_a_file_or_a_truth_file(tmp_path):
    import json

    from bpm.runtime.option_values import parse_gates

    assert parse_gates("-1, 0.5,2") == (-1.0, 0.5, 2.0)
    listed = tmp_path / "gates.txt"
    listed.write_text("# log brightness\n-1\n0.5  # middle\n2\n")
    assert parse_gates(str(listed)) == (-1.0, 0.5, 2.0)
    truth = tmp_path / "sim.truth.json"
    truth.write_text(json.dumps({"simulation": {"bin_edges_log_t": [-1, 0.5, 2]}}))
    assert parse_gates(str(truth)) == (-1.0, 0.5, 2.0)
    with pytest.raises(BpmError, match="numbers"):
        parse_gates("a,b")
    with pytest.raises(BpmError, match="must increase"):
        FitOptions.build(link="affine", gates=(1.0, 0.0))
    with pytest.raises(BpmError, match="affine"):
        FitOptions.build(gates=(0.0, 1.0))


def test_summary_json_says_how_to_make_the_fit_again(table, tmp_path):
    """Version, every option, the data file's checksum: the record alone refits it."""
    path, model = tmp_path / "reads.csv", tmp_path / "sites.bpm"
    table.to_csv(path, index=False)
    model.write_text(SITES)
    result = fit(str(model), str(path), seed=4, fix=("G_J",), **QUICK)
    info = json.loads((result.save(tmp_path / "fit", plots=False) / "summary.json").read_text())
    assert info["bpm_version"] == __version__ and info["torch_version"] == torch.__version__
    assert info["data_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info["options"] == FitOptions.build(seed=4, fix=("G_J",), **QUICK).record()
    assert info["options"]["fix"] == ["G_J"] and info["options"]["threads"] == 1
    assert info["options_given"] == ["fix", "polish", "quiet", "seed", "steps"]
    assert info["execution_path"] == "full" and info["measurement_kind"] == "sortseq"
    assert load_fit(tmp_path / "fit").provenance == result.provenance  # kept when re-saved
    again = fit(info["model"], info["data"], FitOptions.build(info["options"]))
    assert again.metrics == result.metrics  # the same fit, from the record alone
    assert fit(SITES, table, **QUICK).provenance["data_sha256"] is None  # data in memory


def test_the_recorded_options_are_the_flags_that_give_them():
    options = FitOptions.build(
        seed=3, steps=50, lr=0.01, fix=("G_I",), init={"G_I": -2.5}, link="affine",
        gates=(-1.0, 0.5), learn_slope=True, identifiability=True, starts=2, hidden=3,
        spread=1.0, output="t", data_options={"count_columns": ["a", "b"],
        "split_column": "fold", "carve_validation": False, "split_fractions": [0.5, 0.3, 0.2]},
    )  # fmt: skip
    flags, python_only = command_flags(options.record())
    assert python_only == ["spread", "data_options.split_fractions"]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    again = from_arguments(parser.parse_args(flags)).record()
    want = options.record()
    want["spread"] = FitOptions().spread
    want["data_options"].pop("split_fractions")
    assert again == want
    assert command_flags(FitOptions().record()) == ([], [])  # the defaults need no flag
