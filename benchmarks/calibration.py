"""Are bpm's standard errors calibrated? z-scores of refits to simulated data (issue 12).

Each round simulates a sort-seq experiment with ``bpm simulate`` (its own seed: a new
library, new reads, new random matrices), fits it with the process it was drawn from
(``link="affine"`` with the simulation's gates, run to the training optimum:
``stop="training"``), and scores every estimate against the truth,
``z = (estimate - truth) / SE``, for the interaction energy ``G_I`` and every matrix
entry (zero-mean gauge on both sides), with two standard errors: the Hessian's
(:func:`bpm.runtime.uncertainty.analyze`, only where the fit is at an optimum) and the
bootstrap's (``bootstrap=B`` refits on resampled training sequences). Calibrated
errors give an rms z of 1; issue 12 asks for 0.8-1.25 over at least 20 rounds.

    python benchmarks/calibration.py                  # the small two-site model, 20 rounds
    python benchmarks/calibration.py --model models/lac.bpm --rounds 20
    python benchmarks/calibration.py --reads-per-cell 1     # reads as many as cells
    python benchmarks/calibration.py --bootstrap 0 --finish lbfgs   # Hessian errors only,
                                                  # polish by L-BFGS alone

Reads: ``bpm simulate`` draws each read from a cell of its bin, so with about as many
reads as cells some cells are read twice, and a cell's reads share its bin: they are not
the independent draws a read-level likelihood assumes, and the Hessian's errors come
out too small (``--reads-per-cell 1`` shows it). The default draws a quarter as many
reads as cells. The bootstrap resamples whole sequences, with their reads, and does
not depend on that assumption.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bpm.runtime.bootstrap import bootstrap
from bpm.runtime.fit import fit
from bpm.runtime.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]

#: Two sites and an interaction, lac's structure at a tenth of its parameters: fast
#: enough for 20 rounds of fits with bootstraps in a few minutes.
TWO_SITES = """model two_sites
sequence x: dna[30]
energy G_A = matrix(x[0:8])       # an activator's site
energy G_B = matrix(x[12:24])     # the polymerase's site
energy G_I                        # their interaction
param  t_sat > 0
thermodynamic {
    empty : 0
    a     : G_A
    b     : G_B
    ab    : G_A + G_B + G_I
}
output t = t_sat * (P(b) + P(ab))
"""

#: What ``tests/test_calibration.py`` runs (20 rounds, two at a time): the same as
#: ``python benchmarks/calibration.py`` with its defaults.
TEST_SETTINGS = {
    "cells": 40_000,
    "reads": 10_000,
    "replicates": 10,
    "truth": {"G_I": -3.0, "t_sat": 1.0},
    "mutation_rate": 0.1,
    "steps": 60,
}


def one_round(
    model,
    seed: int,
    *,
    cells: int,
    reads: int,
    replicates: int,
    truth: dict,
    mutation_rate: float,
    floor: float = 1e-3,
    background: float = 0.05,
    steps: int | None = None,
    finish: str = "auto",
) -> dict:
    """One simulated experiment, its fit, Hessian and bootstrap (none for ``replicates``
    0): the z-scores (lists)."""
    truth = {k: np.asarray(v, dtype=float) if isinstance(v, list) else v for k, v in truth.items()}
    table, sim = simulate(
        model, n=cells, reads=reads, mutation_rate=mutation_rate, params=truth, seed=seed,
        noise=0.5, floor=floor, background=background,
    )  # fmt: skip
    options = dict(
        link="affine", gates=sim.meta["bin_edges_log_t"], stop="training", quiet=True,
        threads=1, seed=0, bootstrap=replicates, steps=steps, finish=finish,
    )  # fmt: skip
    result = fit(model, table, **{**options, "bootstrap": 0})
    found = result.analyze_uncertainty()
    from bpm.runtime.options import FitOptions

    boot = (
        bootstrap(model, result, FitOptions.build(options), in_process=True) if replicates else None
    )
    params = {k: v.detach().double().numpy() for k, v in result.module.get_params().items()}
    matrices = [n for n, v in sim.params.items() if np.ndim(v) == 2]
    out = {"converged": bool(result.convergence["converged"]), "status": found.status}
    out["refits_converged"] = int(sum(boot.converged)) if boot else 0
    out["stages"] = [(s["stage"], s["iterations"], s["stopped"]) for s in result.stages]
    out["fit_seconds"] = result.wall_seconds
    hess, boots = {}, {}
    for name in ["G_I", *matrices]:
        estimate = np.asarray(params[name], dtype=float)
        values = boot.values(name) if boot else None
        if estimate.ndim == 2:
            estimate = estimate - estimate.mean(1, keepdims=True)
            values = values - values.mean(2, keepdims=True) if boot else None
        error = estimate - np.asarray(sim.params[name], dtype=float)
        hess[name] = np.ravel(error / np.asarray(found.standard_errors[name])).tolist()
        boots[name] = np.ravel(error / boot.standard_error(values)).tolist() if boot else []
    out["hessian"], out["bootstrap"] = hess, boots
    g_i = boot.values("G_I") if boot else np.array([])
    out["G_I"] = {
        "estimate": float(params["G_I"]),
        "truth": float(sim.params["G_I"]),
        "se_hessian": float(found.standard_errors["G_I"]),
        "se_bootstrap": float(boot.standard_error(g_i)) if boot else float("nan"),
        "refits": g_i.tolist(),
        "gradient_norm": float(result.convergence["gradient_norm"]),
        "why": found.why,
    }
    return out


def rms(values) -> float:
    values = np.concatenate([np.ravel(v) for v in values])
    values = values[np.isfinite(values)]
    return float(np.sqrt(np.mean(values**2))) if values.size else float("nan")


def calibration(model: str, rounds: int, jobs: int | None = None, **settings) -> dict:
    """``rounds`` rounds (simulation seeds 1000, 1001, ...), ``jobs`` at a time, each in a
    fresh interpreter (one torch thread): per round the z-scores, and the rms z of G_I
    and of the matrix entries for each kind of standard error. ``model``: a .bpm path
    or text; ``settings``: :func:`one_round`'s keywords."""
    jobs = jobs or os.cpu_count() or 1
    job = json.dumps({"model": model, **settings})

    def run(seed: int) -> dict:
        command = [sys.executable, __file__, "--one-round", str(seed), job]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"round {seed} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    with ThreadPoolExecutor(jobs) as pool:
        found = list(pool.map(run, [1000 + k for k in range(rounds)]))
    summary = {"rounds": rounds, "at_optimum": sum(r["status"] == "ok" for r in found)}
    for kind in ("hessian", "bootstrap"):
        summary[f"{kind}_G_I"] = rms([r[kind]["G_I"] for r in found])
        summary[f"{kind}_matrices"] = rms(
            [z for r in found for name, z in r[kind].items() if name != "G_I"]
        )
    summary["refits_converged"] = sum(r["refits_converged"] for r in found)
    return {"summary": summary, "rounds": found}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="a .bpm file (default: the small two-site model)")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--cells", type=int, default=40_000)
    p.add_argument("--reads", type=int, help="reads in all (default: cells / 4)")
    p.add_argument("--reads-per-cell", type=float, help="reads = cells * this")
    p.add_argument("--bootstrap", type=int, default=10, help="bootstrap refits per round")
    p.add_argument("--mutation-rate", type=float, default=0.1)
    p.add_argument("--steps", type=int, default=60, help="Adam steps of every fit (60)")
    p.add_argument(
        "--finish", default="auto", choices=("lbfgs", "newton", "auto"),
        help="how every fit's polish reaches the training optimum (bpm fit --finish; "
        "auto: Newton, the fits' affine link)",
    )  # fmt: skip
    p.add_argument("--jobs", type=int, help="rounds at a time (default: one per CPU)")
    p.add_argument("--json", help="write every round's numbers to this file")
    p.add_argument("--one-round", nargs=2, metavar=("SEED", "JSON"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one_round:
        settings = json.loads(a.one_round[1])
        model = settings.pop("model")
        print(json.dumps(one_round(model, int(a.one_round[0]), **settings)))
        return
    model = TWO_SITES if a.model is None else a.model
    reads = a.reads or int(a.cells * (a.reads_per_cell or 0.25))
    truth = {"G_I": -3.0, "t_sat": 1.0}
    if a.model and Path(a.model).name == "lac.bpm":
        import pandas as pd

        kcal = 0.6163314136449999
        folder = ROOT / "data" / "kinney2010"
        for name, file in (("G_C", "crp"), ("G_R", "rnap")):
            frame = pd.read_csv(folder / f"{file}_energy_matrix.csv")
            truth[name] = (frame[list("ACGT")].to_numpy(dtype=float) / kcal).tolist()
        truth["G_I"] = -2.83 / kcal
    started = time.perf_counter()
    found = calibration(
        model, a.rounds, jobs=a.jobs, cells=a.cells, reads=reads, replicates=a.bootstrap,
        truth=truth, mutation_rate=a.mutation_rate, steps=a.steps, finish=a.finish,
    )  # fmt: skip
    s = found["summary"]
    if a.json:
        Path(a.json).write_text(json.dumps(found, indent=1) + "\n")
    seconds = time.perf_counter() - started
    print(f"model {a.model or 'two_sites'}: {a.rounds} rounds, {a.cells} cells, {reads} reads, "
          f"{a.bootstrap} bootstrap refits a round, --finish {a.finish} "
          f"({seconds:.0f} s)")  # fmt: skip
    refits = f"{s['refits_converged']} of {a.rounds * a.bootstrap}"
    print(f"fits at an optimum (Hessian errors): {s['at_optimum']} of {a.rounds}; "
          f"bootstrap refits converged: {refits}")  # fmt: skip
    print("| standard error | rms z of G_I | rms z of matrix entries |")
    print("|---|---|---|")
    for kind in ("hessian", "bootstrap"):
        print(f"| {kind} | {s[f'{kind}_G_I']:.3f} | {s[f'{kind}_matrices']:.3f} |")


if __name__ == "__main__":
    main()
