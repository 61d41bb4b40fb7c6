"""Reads that overstate their information: ``dispersion`` (issue 12, docs/fitting.md).

The likelihood counts every read as a cell of its own; when cells carry several reads
it is ``dispersion`` times too sure. Profile intervals end at 2 dNLL = 3.84 x dispersion,
Hessian standard errors grow by its square root, and ``bpm simulate`` records the value
its reads carry.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pytest

from bpm.compiler.errors import BpmError
from bpm.runtime.fit import fit
from bpm.runtime.identifiability import identifiability
from bpm.runtime.option_flags import add_arguments, command_flags, from_arguments
from bpm.runtime.options import FitOptions
from bpm.runtime.simulate import read_dispersion, simulate
from bpm.runtime.uncertainty import analyze

ONE = (Path(__file__).resolve().parents[1] / "benchmarks" / "one_site.bpm").read_text()


def test_read_dispersion_by_hand():
    assert read_dispersion(np.array([1, 1, 1, 0])) == 1.0
    assert read_dispersion(np.array([1, 1, 2, 0])) == pytest.approx(6 / 4)
    assert read_dispersion(np.array([3])) == 3.0
    assert read_dispersion(np.zeros(4)) == 1.0


def test_simulate_records_the_dispersion_of_its_reads():
    # reads drawn at random within bins: one per cell gives about 2, few per cell about 1
    _, deep = simulate(ONE, n=20_000, mutation_rate=0.2, seed=1, noise=0.5)
    _, shallow = simulate(ONE, n=20_000, reads=1_000, mutation_rate=0.2, seed=1, noise=0.5)
    assert deep.meta["read_dispersion"] == pytest.approx(2.0, abs=0.05)
    assert shallow.meta["read_dispersion"] == pytest.approx(1.05, abs=0.04)


def test_dispersion_option_checked_and_carried_by_the_flags():
    with pytest.raises(BpmError, match="dispersion must be a number of at least 1"):
        FitOptions(dispersion=0.5)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = from_arguments(parser.parse_args(["--dispersion", "2"]))
    assert options.dispersion == 2.0
    flags, python_only = command_flags(FitOptions.build(dispersion=2.0).record())
    assert flags == ["--dispersion=2.0"] and python_only == []


@pytest.fixture(scope="module")
def fitted():
    table, truth = simulate(ONE, n=4000, reads=2000, mutation_rate=0.2, seed=4, noise=0.5)
    gates = truth.meta["bin_edges_log_t"]
    return fit(ONE, table, seed=0, quiet=True, steps=100, link="affine", gates=gates)


def test_standard_errors_grow_by_the_square_root(fitted):
    train = fitted.dataset.subset("training")
    converged = fitted.convergence["converged"]
    plain = analyze(
        fitted.module, fitted.measurement, train, output=fitted.output, converged=converged
    )
    wide = analyze(
        fitted.module,
        fitted.measurement,
        train,
        output=fitted.output,
        converged=converged,
        dispersion=2.0,
    )
    assert plain.status == "ok", plain.why
    for name in ("G",):  # t_sat trades with the affine link's offset: not identified
        a = np.atleast_1d(plain.standard_errors[name])
        b = np.atleast_1d(wide.standard_errors[name])
        usable = np.isfinite(a) & (a > 0)
        assert usable.sum() >= 0.5 * a.size, (name, a)
        np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))
        np.testing.assert_allclose(b[usable] / a[usable], math.sqrt(2.0), rtol=1e-9)


def test_profile_intervals_widen_about_the_square_root(fitted):
    plain = identifiability(fitted, processes=1)
    wide = identifiability(fitted, processes=1, dispersion=2.0)
    assert wide["dispersion"] == 2.0 and plain["dispersion"] == 1.0
    for name in ("G",):
        p, w = plain["energy_scale"][name], wide["energy_scale"][name]
        assert w["rise_nats"] == pytest.approx(2 * p["rise_nats"])
        assert None not in (p["low"], p["high"], w["low"], w["high"]), (p, w)
        ratio = (w["high"] - w["low"]) / (p["high"] - p["low"])
        assert 1.25 < ratio < 1.6, (name, ratio)  # sqrt(2) for a quadratic profile
