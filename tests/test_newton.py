"""The Newton finish and the energy-table Hessian it steps with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bpm.compiler import load
from bpm.compiler.errors import BpmError
from bpm.runtime.energy_hessian import EnergyHessian, jacobian_blocks
from bpm.runtime.fit import fit
from bpm.runtime.hessian import default_nll, gradient, hessian, learned_slots
from bpm.runtime.measurement import OrdinalMeasurement
from bpm.runtime.newton import newton_applies, uses_newton
from bpm.runtime.options import FitOptions
from bpm.runtime.simulate import encode, simulate
from bpm.runtime.train import SETTLED_STOPS, Joint

ROOT = Path(__file__).resolve().parents[1]
ONE = (ROOT / "benchmarks" / "one_site.bpm").read_text()
#: Every kind of site energy, on both strands, and a scalar energy.
MIXED = """model mixed
sequence x: dna[30]
energy G_fwd = matrix(x[0:8])
energy G_rev = matrix(revcomp(x[8:16]))
energy G_nn = neighbor(x[16:22])
energy G_pair = pairwise(x[22:27])
energy G_I = -1.0
param t_sat > 0
thermodynamic {
    empty : 0
    a : G_fwd
    b : G_rev + G_nn
    ab : G_fwd + G_rev + G_nn + G_I
    c : G_pair
}
output t = t_sat * (P(a) + P(ab) + 0.5 * P(c))
"""


def _random_module(text: str, seed: int):
    cls = load(text)
    module = cls().double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return cls, module


def test_energy_table_jacobian_matches_autograd_for_every_kind_of_site():
    cls, module = _random_module(MIXED, 0)
    gen = torch.Generator().manual_seed(1)
    codes = torch.randint(0, 4, (300, cls.sequence_length), generator=gen)
    slots = learned_slots(module)
    is_energy = [s.kind in ("matrix", "offset", "neighbor", "pairwise", "energy") for s in slots]
    blocks = jacobian_blocks(module, slots, is_energy, codes)
    attrs = [s.attribute for s, e in zip(slots, is_energy, strict=True) if e]
    shapes = [getattr(module, a).shape for a in attrs]
    flat = torch.cat([getattr(module, a).detach().reshape(-1) for a in attrs])
    full = _jacobian(module, attrs, shapes, flat, codes)  # [n, k, d_e]
    assert len(blocks) == full.shape[1]
    for a, (used, Ja) in enumerate(blocks):
        rebuilt = torch.zeros_like(full[:, a, :])
        rebuilt[:, used] = Ja
        assert torch.allclose(rebuilt, full[:, a, :], atol=1e-12), f"energy column {a}"


def _jacobian(module, attrs, shapes, flat, codes):
    """d energy_table / d energy parameters by reverse-mode autograd, row by row."""
    sizes = [int(np.prod(s)) for s in shapes]

    def table(z):
        parts = torch.split(z, sizes)
        values = {a: p.reshape(s) for a, p, s in zip(attrs, parts, shapes, strict=True)}
        with torch.nn.utils.stateless._reparametrize_module(module, values):
            return module.energy_table(codes)

    return torch.autograd.functional.jacobian(table, flat)


@pytest.mark.parametrize("text", [MIXED, ONE])
def test_energy_hessian_derivatives_match_plain_autograd(text):
    cls, module = _random_module(text, 2)
    table, _ = simulate(load(text), n=400, seed=3, noise=0.5)
    codes = encode(table["x"], "ACGT")
    counts = table.filter(like="ct_").to_numpy()
    measurement = OrdinalMeasurement(counts.shape[1], hidden=2).double()
    x = torch.as_tensor(codes).long()
    c = torch.as_tensor(counts).double()
    module.train()
    value, g, H = EnergyHessian(module, learned_slots(module), x, chunk=150, keep=True).derivatives(
        module, measurement, c, "t"
    )
    assert value == pytest.approx(float(default_nll(module, measurement, x, c).detach()), rel=1e-12)
    plain_g = gradient(module, measurement, (codes, counts))
    np.testing.assert_allclose(g.numpy(), plain_g, rtol=1e-9, atol=1e-9 * np.abs(plain_g).max())
    plain_H = hessian(module, measurement, nll=lambda m, q: -(c * q.log_probs(m(x))).sum())[0]
    assert np.abs(H.numpy() - plain_H).max() < 1e-8 * np.abs(plain_H).max()


@pytest.fixture(scope="module")
def one_site_reads():
    table, sim = simulate(ONE, n=4000, mutation_rate=0.2, seed=4, noise=0.5)
    return table, sim


def test_newton_finish_reaches_the_optimum_that_a_long_lbfgs_polish_reaches(one_site_reads):
    # the sort simulated as the affine link with the gates assumes: a likelihood with an
    # optimum (the flexible link's has a valley without end on these reads)
    table, sim = one_site_reads
    gates = sim.meta["bin_edges_log_t"]
    newton = fit(ONE, table, quiet=True, seed=0, link="affine", gates=gates)  # auto
    lbfgs = fit(ONE, table, quiet=True, seed=0, link="affine", gates=gates, finish="lbfgs")
    assert [s["stage"] for s in newton.stages] == ["adam", "newton", "lbfgs"]
    assert [s["stage"] for s in lbfgs.stages] == ["adam", "lbfgs"]
    assert newton.stages[1]["stopped"] in SETTLED_STOPS and newton.stages[1]["iterations"] < 20
    assert newton.stages[2]["iterations"] < lbfgs.stages[1]["iterations"]
    assert newton.convergence["converged"]
    # the same optimum: training NLL within 0.05 nats in all, the matrices alike
    reads = float(table.filter(like="ct_").to_numpy().sum()) * 0.8
    gap = (newton.metrics["training"]["nll"] - lbfgs.metrics["training"]["nll"]) * np.log(2)
    assert gap * reads < 0.05
    a = newton.params()["G"].numpy().ravel()
    b = lbfgs.params()["G"].numpy().ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.9999
    assert np.abs(a - b).max() < 0.02
    # and near the truth it was drawn from
    truth = np.asarray(sim.params["G"])
    truth = (truth - truth.mean(1, keepdims=True)).ravel()
    assert np.corrcoef(a, truth)[0, 1] > 0.95


def test_finish_option_is_checked_and_on_the_command_line():
    with pytest.raises(BpmError, match="finish must be one of"):
        FitOptions(finish="bfgs")
    with pytest.raises(BpmError, match="needs stop 'training'"):
        FitOptions(finish="newton", stop="validation")
    import argparse

    from bpm.runtime.option_flags import add_arguments, from_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert from_arguments(parser.parse_args(["--finish", "lbfgs"])).finish == "lbfgs"
    assert from_arguments(parser.parse_args(["--finish", "newton"])).finish == "newton"
    assert from_arguments(parser.parse_args([])).finish == "auto"


def test_newton_applies_only_where_the_module_has_an_energy_table(one_site_reads):
    cls = load(ONE)
    joint = Joint(cls(), OrdinalMeasurement(10, hidden=2), "t")
    assert newton_applies(joint, 4000)
    assert not newton_applies(joint, 10**9)  # its Jacobian would not fit in memory

    class Plain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(3))

    bare = Joint(Plain(), OrdinalMeasurement(10, hidden=2), "t")
    assert not newton_applies(bare, 100)
    assert uses_newton(joint, FitOptions(link="affine"), 100)  # the default, auto
    assert not uses_newton(joint, FitOptions(), 100)  # the flexible link: L-BFGS alone
    assert uses_newton(joint, FitOptions(finish="newton"), 100)
    assert not uses_newton(bare, FitOptions(link="affine"), 100)
    assert not uses_newton(joint, FitOptions(link="affine", stop="validation"), 100)
    with pytest.raises(BpmError, match="use --finish lbfgs"):
        uses_newton(bare, FitOptions(finish="newton"), 100)


def test_a_streamed_fit_with_few_rows_takes_the_same_newton_finish(one_site_reads, tmp_path):
    table, sim = one_site_reads
    path = tmp_path / "reads.csv.gz"
    table.to_csv(path, index=False)
    result = fit(
        ONE, str(path), mode="stream", finish="newton", link="affine", steps=30, quiet=True,
        gates=sim.meta["bin_edges_log_t"], cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    assert result.data_summary["training"]["mode"] == "stream"
    assert [s["stage"] for s in result.stages] == ["adam", "newton", "lbfgs"]
    assert result.convergence["converged"]


def test_profiles_of_a_newton_finished_fit_are_refitted_by_newton(monkeypatch):
    # the fixture of tests/test_dispersion.py: at the optimum Newton reaches, L-BFGS
    # profile refits left the interval with dispersion 2 narrower on one side than
    # with dispersion 1; Newton refits widen it by about sqrt(2), as they must
    from bpm.runtime import identifiability_profile
    from bpm.runtime.identifiability import identifiability

    table, truth = simulate(ONE, n=4000, reads=2000, mutation_rate=0.2, seed=4, noise=0.5)
    gates = truth.meta["bin_edges_log_t"]
    result = fit(ONE, table, seed=0, quiet=True, steps=100, link="affine", gates=gates,
                 finish="newton")  # fmt: skip
    finishes = []
    real = identifiability_profile.run_profile

    def recording(module, measurement, output, codes, counts, target):
        finishes.append(target.finish)
        return real(module, measurement, output, codes, counts, target)

    monkeypatch.setattr("bpm.runtime.identifiability.run_profile", recording)
    plain = identifiability(result, processes=1)["energy_scale"]["G"]
    wide = identifiability(result, processes=1, dispersion=2.0)["energy_scale"]["G"]
    assert finishes and set(finishes) == {"newton"}
    assert wide["low"] < plain["low"] < 1.0 < plain["high"] < wide["high"]
    ratio = (wide["high"] - wide["low"]) / (plain["high"] - plain["low"])
    assert 1.25 < ratio < 1.6, ratio
