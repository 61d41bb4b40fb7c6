"""Where the lac fit goes when run on to the training optimum, for a given link.

Fits the shipped lac data with ``--hidden`` tanh units in the link and the polish
stopped on the validation reads (``stop="validation"``, the early-stopped estimate),
prints the training NLL and the norm of its gradient (bits per read, every learned
parameter of the module and the measurement process), then runs ``--iterations`` more
float64 L-BFGS iterations with no validation stop and prints the same with the
validation NLL and G_I. The table in docs/fitting.md ("Converged, with a link of two
units") comes from it. Run from the project root:
``python benchmarks/lac_convergence.py --hidden 8``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from bpm.runtime.fit import fit, split_tensors
from bpm.runtime.optimizers import LBFGS
from bpm.runtime.sources import FullBatch, tensor_chunks
from bpm.runtime.train import Joint, evaluate, in_float64, run_stage

ROOT = Path(__file__).resolve().parents[1]


def gradient(joint: Joint, x: torch.Tensor, c: torch.Tensor) -> tuple[float, float, float]:
    """Training NLL (bits per read), its gradient's norm and largest entry."""
    joint.zero_grad()
    loss = -joint(x, c).sum() / c.sum() / math.log(2.0)
    loss.backward()
    g = torch.cat([p.grad.reshape(-1) for p in joint.parameters() if p.grad is not None])
    return float(loss.detach()), float(g.norm()), float(g.abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=2, help="tanh units in the link")
    args = parser.parse_args()
    data = ROOT / "data" / "lac_sortseq_kinney2010.csv.gz"
    result = fit(ROOT / "models" / "lac.bpm", data, seed=args.seed, hidden=args.hidden,
                 stop="validation", quiet=True)  # fmt: skip
    print("stages:", result.stages)
    joint = Joint(result.module, result.measurement, result.output)
    x, c = split_tensors(result.dataset, "training", "cpu")
    xv, cv = split_tensors(result.dataset, "validation", "cpu")
    kcal = result.kT_kcal_per_mol
    with in_float64(joint):
        c, cv = c.double(), cv.double()
        nll, norm, biggest = gradient(joint, x, c)
        val = evaluate(joint, tensor_chunks(xv, cv))["nll"]
        g_i = float(result.module.get_params()["G_I"]) * kcal
        print(f"default: train {nll:.5f} val {val:.5f} |grad| {norm:.2e} max {biggest:.1e} "
              f"G_I {g_i:.2f} kcal/mol")  # fmt: skip
        trainable = [p for p in joint.parameters() if p.requires_grad]
        stage = run_stage(
            joint, LBFGS(trainable), FullBatch(x, c, None),
            lambda: evaluate(joint, tensor_chunks(xv, cv)), eval_every=10,
            patience=10**9, min_delta=-math.inf, max_iterations=args.iterations,
            validate_first=True, on_error="stop",
        )  # fmt: skip
        nll, norm, biggest = gradient(joint, x, c)
        val = evaluate(joint, tensor_chunks(xv, cv))["nll"]
        g_i = float(result.module.get_params()["G_I"]) * kcal
        print(f"+{stage.iterations} L-BFGS ({stage.stopped}): train {nll:.5f} val {val:.5f} "
              f"|grad| {norm:.2e} max {biggest:.1e} G_I {g_i:.2f} kcal/mol")  # fmt: skip


if __name__ == "__main__":
    main()
