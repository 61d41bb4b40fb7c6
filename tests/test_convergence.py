"""Fits run to the training optimum (``stop="training"``) end there and say so: the
stall rule of the L-BFGS polish, and a fit that a further, independent L-BFGS run from
its end cannot improve on the scale of a likelihood interval."""

from __future__ import annotations

import math

import torch

from bpm.runtime.fit import fit, split_tensors
from bpm.runtime.optimizers import LBFGS, STALL_NATS
from bpm.runtime.simulate import simulate
from bpm.runtime.sources import FullBatch, tensor_chunks
from bpm.runtime.train import Joint, evaluate, in_float64, run_stage

MODEL = """
model one_site
sequence x: dna[10]
energy G = matrix(x[2:8])
param tmax > 0
thermodynamic {
    empty : 0
    bound : G
}
output t = tmax * P(bound)
"""


def test_the_stall_rule_needs_two_small_steps_in_a_row():
    x = torch.tensor([1.0], requires_grad=True)
    optimizer = LBFGS([x], iterations_per_step=1, stall=1e-3)

    def closure():
        optimizer.opt.zero_grad()
        loss = 1e-6 * (x - 5.0) ** 2 + 1.0  # nearly flat: each step gains ~1e-5
        loss.backward()
        return loss

    optimizer.step(closure)
    assert not optimizer.stalled  # one loss seen: no decrease measured yet
    optimizer.step(closure)
    assert not optimizer.stalled  # one small decrease is not yet a stall
    optimizer.step(closure)
    assert optimizer.stalled and optimizer.converged


def test_a_fit_run_to_the_training_optimum_is_there():
    frame, _ = simulate(MODEL, n=3000, reads=6000, seed=4)
    found = fit(MODEL, frame, stop="training", polish=1000, steps=150, quiet=True, seed=1)
    assert found.convergence["converged"] is True
    assert found.stages[-1]["stopped"] in ("stalled", "converged")
    assert not any("not converged" in note for note in found.notes)
    # An independent continuation: 200 more float64 L-BFGS iterations with no stopping
    # rule of their own must not find a meaningfully better training likelihood.
    joint = Joint(found.module, found.measurement, found.output)
    x, c = split_tensors(found.dataset, "training", "cpu")
    with in_float64(joint):
        c = c.double()
        before = -float(joint(x, c).sum().detach())
        trainable = [p for p in joint.parameters() if p.requires_grad]
        run_stage(
            joint, LBFGS(trainable), FullBatch(x, c, None),
            lambda: evaluate(joint, tensor_chunks(x, c)), eval_every=10,
            patience=10**9, min_delta=-math.inf, max_iterations=200, on_error="stop",
        )  # fmt: skip
        after = -float(joint(x, c).sum().detach())
    assert before - after < 20 * STALL_NATS  # nats over all training reads; 1.92 spans 95%


def test_the_default_stops_on_the_validation_reads():
    frame, _ = simulate(MODEL, n=1500, reads=3000, seed=5)
    found = fit(MODEL, frame, steps=60, stop="validation", quiet=True)
    assert found.stages[-1]["stopped"] != "stalled"
