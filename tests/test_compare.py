"""``bpm compare`` (issue 14): the paired error, the likelihood-ratio test, AIC and BIC
against hand computations, nested detection, per-row log-likelihoods, the command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from bpm.cli.compare_command import parse_nested, run_compare
from bpm.cli.main import main
from bpm.compiler import load
from bpm.compiler.errors import BpmError
from bpm.runtime.compare import compare, describe, learned_count
from bpm.runtime.compare_stats import (
    aic,
    bic,
    likelihood_ratio,
    nested_in,
    nested_pairs,
    paired_difference,
)
from bpm.runtime.fit import fit, split_tensors
from bpm.runtime.simulate import simulate
from bpm.runtime.train import Joint, row_log_likelihoods

ROOT = Path(__file__).resolve().parent.parent
LAC = str(ROOT / "models" / "lac.bpm")
NO_I = str(ROOT / "models" / "lac_no_interaction.bpm")
OPEN = str(ROOT / "models" / "open_complex.bpm")
DATA = str(ROOT / "data" / "lac_sortseq_kinney2010.csv.gz")
QUICK = dict(steps=40, polish=30, quiet=True)


@pytest.fixture(scope="module")
def lac_table():
    frame, _ = simulate(LAC, n=3000, mutation_rate=0.115, seed=5)
    return frame


# ---------------------------------------------------------------- arithmetic


def test_paired_difference_by_hand():
    a = np.array([-1.0, -2.0, -3.0, -0.5])
    b = np.array([-1.5, -2.0, -4.0, -0.25])
    d = [0.5, 0.0, 1.0, -0.25]  # a - b
    mean = sum(d) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 3)
    found = paired_difference(a, b)
    assert found["difference"] == pytest.approx(1.25)
    assert found["se"] == pytest.approx(2 * sd)  # sqrt(4) * sd
    assert found["rows"] == 4
    # the other way round: the same error, the opposite sign
    back = paired_difference(b, a)
    assert back["difference"] == pytest.approx(-1.25) and back["se"] == pytest.approx(found["se"])


def test_pairing_cancels_the_noise_both_models_share():
    rng = np.random.default_rng(0)
    shared = rng.normal(0, 3.0, 1000)  # how hard each sequence is, for any model
    a = shared - 1.0 + rng.normal(0, 0.1, 1000)
    b = shared - 1.2 + rng.normal(0, 0.1, 1000)
    found = paired_difference(a, b)
    assert found["difference"] == pytest.approx(200, rel=0.05)
    assert found["se"] == pytest.approx(math.sqrt(1000 * 0.02), rel=0.1)  # sd(d) = 0.1 sqrt 2
    assert found["se_unpaired"] > 20 * found["se"]
    with pytest.raises(ValueError, match="paired rows differ"):
        paired_difference(a, b[:-1])


def test_likelihood_ratio_by_hand():
    # chi-square with 2 degrees of freedom: sf(x) = exp(-x / 2)
    found = likelihood_ratio(105.0, 102.5, 2)
    assert found["statistic"] == pytest.approx(5.0)
    assert found["p_value"] == pytest.approx(math.exp(-2.5))
    assert found["df"] == 2
    # one degree of freedom: the 5% point of chi-square(1) is 1.959964^2
    assert likelihood_ratio(1.959964**2 / 2, 0.0, 1)["p_value"] == pytest.approx(0.05, abs=1e-6)
    # the larger model fitting worse is kept as it is, p = 1
    worse = likelihood_ratio(10.0, 11.0, 1)
    assert worse["statistic"] == pytest.approx(-2.0) and worse["p_value"] == 1.0


def test_aic_and_bic_by_hand():
    assert aic(100.0, 5) == pytest.approx(210.0)
    assert bic(100.0, 5, 1000) == pytest.approx(5 * math.log(1000) + 200.0)


# ---------------------------------------------------------------- nesting


def test_learned_count_leaves_out_each_matrix_gauge():
    module = load(LAC)()
    # G_C: 26 positions x 4 + offset - 26 shifts; G_R: 41 x 4 + 1 - 41; G_I; t_sat
    assert learned_count(module) == (26 * 3 + 1) + (41 * 3 + 1) + 2
    assert learned_count(load(NO_I)()) == learned_count(module) - 1


def test_lac_without_the_interaction_is_detected_nested_in_lac():
    lac, no_i, kinetic = (describe(load(p)(), "t") for p in (LAC, NO_I, OPEN))
    assert nested_in(no_i, lac)
    assert not nested_in(lac, no_i)
    assert not nested_in(lac, lac)
    assert not nested_in(kinetic, lac) and not nested_in(lac, kinetic)
    # the same names reading another window of the sequence are not nested
    moved = Path(NO_I).read_text().replace("matrix(x[1:27])", "matrix(x[2:28])")
    assert not nested_in(describe(load(moved)(), "t"), lac)
    # another output is not nested either
    assert not nested_in({**no_i, "output": "u"}, lac)


def test_nested_pairs_declared_and_detected_once_each():
    lac, no_i, kinetic = (describe(load(p)(), "t") for p in (LAC, NO_I, OPEN))
    found = nested_pairs({"lac": lac, "lac_no_interaction": no_i, "open_complex": kinetic})
    assert found == [("lac_no_interaction", "lac", "detected")]
    declared = nested_pairs(
        {"lac": lac, "lac_no_interaction": no_i, "open_complex": kinetic},
        [("lac_no_interaction", "lac"), ("open_complex", "lac")],
    )
    assert declared == [
        ("lac_no_interaction", "lac", "declared"),
        ("open_complex", "lac", "declared"),
    ]


# ---------------------------------------------------------------- per-row likelihoods


def test_row_log_likelihoods_sum_to_the_fit_metrics(lac_table):
    result = fit(LAC, lac_table, steps=20, polish=0, quiet=True)
    joint = Joint(result.module, result.measurement, result.output)
    for split in ("training", "test"):
        ll, weight = row_log_likelihoods(joint, *split_tensors(result.dataset, split, "cpu"))
        assert ll.dtype == np.float64 and ll.shape == weight.shape
        assert len(ll) == result.sizes[split]
        bits = -ll.sum() / weight.sum() / math.log(2)
        assert bits == pytest.approx(result.metrics[split]["nll"], rel=1e-5)
    assert next(result.module.parameters()).dtype == torch.float32  # put back


# ---------------------------------------------------------------- the comparison


def test_compare_ranks_pairs_and_tests_on_one_split(lac_table, tmp_path):
    # a quick fit of a small library: which model wins is not the point here
    found = compare([NO_I, LAC], lac_table, QUICK, output=tmp_path, plots=False)
    best, other = found["models"]
    assert found["best"] == best["model"]
    assert {best["model"], other["model"]} == {"lac", "lac_no_interaction"}
    assert best["test_ll_bits_per_read"] >= other["test_ll_bits_per_read"]
    assert best["test_diff_nats"] == 0 and best["test_diff_se_nats"] == 0
    assert other["test_diff_nats"] <= 0 < other["test_diff_se_nats"]
    per_read = other["test_ll_bits_per_read"] - best["test_ll_bits_per_read"]
    assert other["test_diff_bits_per_read"] == pytest.approx(per_read)
    by_name = {m["model"]: m for m in found["models"]}
    small, large = by_name["lac_no_interaction"], by_name["lac"]
    assert small["parameters"] == large["parameters"] - 1
    (test,) = found["nested"]
    assert (test["nested"], test["in"], test["how"], test["df"]) == (
        "lac_no_interaction", "lac", "detected", 1,
    )  # fmt: skip
    nll_gap = small["train_nll_nats"] - large["train_nll_nats"]
    assert test["statistic"] == pytest.approx(2 * nll_gap)
    assert test["delta_aic"] == pytest.approx(2 * nll_gap - 2)
    assert test["delta_bic"] == pytest.approx(2 * nll_gap - math.log(small["train_reads"]))
    written = json.loads((tmp_path / "comparison.json").read_text())
    assert written["best"] == found["best"] and written["nested"][0]["df"] == 1
    for name in ("lac", "lac_no_interaction"):
        assert (tmp_path / name / "summary.json").is_file()
        assert (tmp_path / name / "report.html").is_file()
    # both fits read the one split drawn here, and the rows scored here are the ones the
    # worker's fit measured (its metrics, in float32, agree with the float64 rows)
    for name, entry in by_name.items():
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        splits = (summary["n_train"], summary["n_val"], summary["n_test"])
        assert splits == tuple(found["sizes"][s] for s in ("training", "validation", "test"))
        test_nll = summary["metrics"]["test"]["nll"]
        assert entry["test_ll_bits_per_read"] == pytest.approx(-test_nll, rel=1e-5)


def test_compare_refuses_what_it_cannot_compare(lac_table):
    with pytest.raises(BpmError, match="two or more models"):
        compare([LAC], lac_table, QUICK)
    with pytest.raises(BpmError, match="same name"):
        compare([LAC, LAC], lac_table, QUICK)
    with pytest.raises(BpmError, match="no model named"):
        compare([LAC, NO_I], lac_table, QUICK, nested=[("lac", "missing")])
    with pytest.raises(BpmError, match="in memory, to score each on the same test reads"):
        compare([LAC, NO_I], lac_table, {**QUICK, "mode": "stream"})
    with pytest.raises(BpmError, match=r"fix names \['G_X'\], parameters of none of the models"):
        compare([LAC, NO_I], lac_table, {**QUICK, "fix": ("G_I", "G_X")})
    with pytest.raises(BpmError, match="must learn fewer"):  # refused before any fit
        compare([LAC, NO_I], lac_table, QUICK, nested=[("lac", "lac_no_interaction")])
    with pytest.raises(BpmError, match="SMALL:LARGE"):
        parse_nested(["lac"])


def test_data_without_a_split_and_a_fit_that_fails_in_its_worker_are_named(lac_table):
    with pytest.raises(BpmError, match="ranks on test reads; the split gives"):
        compare([LAC, NO_I], lac_table.assign(set="training"), QUICK)
    with pytest.raises(BpmError, match="fitting lac: .*no output 'u'"):
        compare([LAC, NO_I], lac_table, {**QUICK, "output": "u"})


def test_compare_command_errors_are_one_line(capsys):
    assert main(["compare", LAC, DATA]) == 1
    assert "two or more MODEL.bpm" in capsys.readouterr().err
    assert main(["compare", LAC, NO_I, DATA, "--nested", "lac"]) == 1
    assert "SMALL:LARGE" in capsys.readouterr().err


@pytest.mark.slow
def test_compare_ranks_lac_above_lac_without_interaction_on_the_shipped_data(tmp_path, capsys):
    assert run_compare([LAC, NO_I], DATA, str(tmp_path), {"quiet": True}) == 0
    table = capsys.readouterr().out
    found = json.loads((tmp_path / "comparison.json").read_text())
    assert found["best"] == "lac"
    other = found["models"][1]
    assert other["model"] == "lac_no_interaction"
    # lac wins by many paired standard errors on the test reads (measured: 0.395 +- 0.010)
    assert other["test_diff_bits_per_read"] < -10 * other["test_diff_se_bits_per_read"] < 0
    (test,) = found["nested"]
    assert test["df"] == 1 and test["statistic"] > 100 and test["p_value"] < 1e-20
    assert "lac_no_interaction in lac: 2ΔNLL" in table and "± " in table
    assert (tmp_path / "lac" / "report.html").is_file()
    assert (tmp_path / "lac_no_interaction" / "plots").is_dir()


# ---------------------------------------------------------------- bpm fit's options


def test_compare_takes_every_fit_flag_but_streaming():
    """One definition of the fit flags (option_flags.add_arguments and the fit directory's
    flags) serves both commands: compare has each of fit's but the in-memory-only ones."""
    from bpm.cli.compare_command import IN_MEMORY_ONLY
    from bpm.cli.main import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    flags = {name: {s for a in commands[name]._actions for s in a.option_strings}
             for name in ("fit", "compare")}  # fmt: skip
    assert flags["fit"] - flags["compare"] == set(IN_MEMORY_ONLY)
    assert flags["compare"] - flags["fit"] == {"--nested"}
    wanted = {"--lr", "--starts", "--link", "--gates", "--measurement", "--threads",
              "--bootstrap", "--identifiability", "--uncertainty", "--gauge"}  # fmt: skip
    assert wanted <= flags["compare"]


def test_fit_flags_reach_each_models_fit(lac_table, tmp_path, capsys):
    data = tmp_path / "reads.csv"
    lac_table.to_csv(data, index=False)
    out = tmp_path / "cmp"
    argv = ["compare", LAC, NO_I, str(data), "-o", str(out), "--no-plots", "--quiet",
            "--steps", "40", "--polish", "30", "--lr", "0.05", "--hidden", "3",
            "--fix", "G_I", "--init", "G_I=-1kcal/mol", "--gauge", "wild-type"]  # fmt: skip
    assert main(argv) == 0
    assert "wrote" not in capsys.readouterr().err  # --quiet: no closing line either
    lac, no_i = (json.loads((out / m / "summary.json").read_text())
                 for m in ("lac", "lac_no_interaction"))  # fmt: skip
    for info in (lac, no_i):
        assert (info["options"]["lr"], info["options"]["hidden"]) == (0.05, 3)
        assert info["measurement"]["hidden"] == 3 and info["gauge"] == "wild-type"
    # --init and --fix apply where the model has the name, in its kT
    kT = lac["kT_kcal_per_mol"]
    assert lac["options"]["fix"] == ["G_I"] and no_i["options"]["fix"] == []
    assert lac["params"]["G_I"] == pytest.approx(-1.0 / kT, rel=1e-6)
    assert no_i["options"]["init"] == {}
    # with G_I held, lac learns what lac_no_interaction learns: counted so, and not nested
    found = json.loads((out / "comparison.json").read_text())
    counts = {m["model"]: m["learned_numbers"] for m in found["models"]}
    assert counts["lac"] == counts["lac_no_interaction"] and found["nested"] == []


def test_several_starts_fit_each_model_on_the_one_split(lac_table, tmp_path):
    # through fit()'s front door (as a bootstrap or profiles would be), one model after
    # the other, on the split drawn here
    options = {**QUICK, "steps": 20, "polish": 10, "starts": 2}
    found = compare([LAC, NO_I], lac_table, options, output=tmp_path, plots=False)
    sizes = tuple(found["sizes"][s] for s in ("training", "validation", "test"))
    for name in ("lac", "lac_no_interaction"):
        info = json.loads((tmp_path / name / "summary.json").read_text())
        assert (info["n_train"], info["n_val"], info["n_test"]) == sizes
        assert info["options"]["starts"] == 2 and info["optima"]  # multistart's record
    (test,) = found["nested"]
    assert test["df"] == 1


def test_init_in_kcal_per_mol_must_mean_one_thing_in_every_model():
    from bpm.cli.fit_checks import resolve_init_all
    from bpm.compiler.pipeline import to_ir

    text = Path(LAC).read_text()
    cold = to_ir(text.replace("sequence x:", "temperature 20 C\nsequence x:", 1))
    warm = to_ir(text)
    assert resolve_init_all(["G_I=-3"], [cold, warm]) == ["G_I=-3.0"]  # kT: the same
    assert resolve_init_all(["t_sat=2"], [cold, to_ir(Path(NO_I).read_text())]) == ["t_sat=2.0"]
    with pytest.raises(BpmError, match="temperatures differ"):
        resolve_init_all(["G_I=-1kcal/mol"], [cold, warm])
