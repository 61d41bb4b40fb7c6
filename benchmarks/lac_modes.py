"""Where does the lac fit's G_I settle? Newton steps from the default fit.

Fits ``models/lac.bpm`` to the shipped data with the defaults, then takes damped
Newton steps with the exact Hessian of the training NLL
(:func:`bpm.runtime.uncertainty.hessian`, eigenvalues taken in absolute value, the
damping raised until a step lowers the NLL). Prints, per step: seconds, G_I, training
and validation NLL in bits per read, and the Hessian's smallest eigenvalue. A check
that the default fit stopped near an optimum and not part-way along a valley (it was
how the weak optimum of the link without a floor was told apart, docs/fitting.md).
About a minute on 2 cores::

    python benchmarks/lac_modes.py --steps 12
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from bpm.runtime.fit import fit, split_tensors
from bpm.runtime.hessian import default_nll, hessian, learned_slots
from bpm.runtime.train import Joint, evaluate

ROOT = Path(__file__).resolve().parents[1]
KCAL = 0.6163314136449999  # kcal/mol per kT at 37 C


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = ROOT / "data" / "lac_sortseq_kinney2010.csv.gz"
    result = fit(ROOT / "models" / "lac.bpm", data, seed=args.seed, quiet=True)
    module, measurement = result.module.double(), result.measurement.double()
    train = result.dataset.subset("training")
    x, c = split_tensors(result.dataset, "training", "cpu")
    xv, cv = split_tensors(result.dataset, "validation", "cpu")
    c, cv = c.double(), cv.double()
    leaves = [getattr(module, slot.attribute) for slot in learned_slots(module)]
    joint = Joint(module, measurement, "t")
    leaves += list(measurement.parameters())

    def flat() -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in leaves])

    def assign(v: torch.Tensor) -> None:
        with torch.no_grad():
            for p, part in zip(leaves, torch.split(v, [p.numel() for p in leaves]), strict=True):
                p.copy_(part.reshape(p.shape))

    def report(step: int, seconds: float, min_eig: float) -> None:
        g = float(module.get_params()["G_I"])
        train_nll = evaluate(joint, [(x, c)])["nll"]
        val_nll = evaluate(joint, [(xv, cv)])["nll"]
        print(
            f"{step:3d} {seconds:6.1f} s  G_I {g:7.3f} kT ({g * KCAL:6.2f} kcal/mol)  "
            f"train {train_nll:.6f}  val {val_nll:.6f}  min eig {min_eig:.2e}",
            flush=True,
        )

    report(0, 0.0, float("nan"))
    damping, started = 1e-3, time.perf_counter()
    for step in range(1, args.steps + 1):
        H = torch.from_numpy(hessian(module, measurement, (train.codes, train.counts))[0])
        loss = default_nll(module, measurement, x, c)
        grad = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, leaves)])
        loss = float(loss.detach())
        eig, vectors = torch.linalg.eigh(H)
        start = flat()
        while damping < 1e8:
            assign(start - vectors @ ((vectors.T @ grad) / (eig.abs() + damping)))
            with torch.no_grad():
                if float(default_nll(module, measurement, x, c)) < loss:
                    damping = max(damping / 3, 1e-9)
                    break
            damping *= 10
            assign(start)
        report(step, time.perf_counter() - started, float(eig.min()))


if __name__ == "__main__":
    main()
