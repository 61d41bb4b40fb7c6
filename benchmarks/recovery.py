"""Recovery accuracy of the lac model on simulated sort-seq data, and simulation speed.

Ground truth: the Kinney et al. (2010) CRP and RNAP matrices (kT) and G_I = -2.83
kcal/mol; library around the lac wild type at the real mutation rate (0.115). Prints
Pearson r of each fitted matrix against the truth (zero-mean gauge) and the G_I error,
against the number of sequences and against the readout noise, then the time to
simulate 1,000,000 sequences.

    python benchmarks/recovery.py            # 10^3..10^5 sequences (a few minutes)
    python benchmarks/recovery.py --large    # adds 10^6
    python benchmarks/recovery.py --steps 800 --patience 40   # a longer Adam stage
    python benchmarks/recovery.py --links    # matched and mismatched measurement processes

``--links``: data drawn from a realistic truth (bpm's own fit of the shipped lac reads:
log brightness = log t + N(0, 0.5^2), sorted at fixed gates, mutation rate 0.115),
fitted with the flexible link, the affine link without gates and the affine link with
the simulation's gates (the process the data were drawn from), five seeds at 10^4,
5 x 10^4 and 10^5 cells: Pearson r and scale (slope of fitted on true entries, zero-mean
gauge) of both matrices, the G_I error in kT, and whether the truth lies in the fit's
95% profile-likelihood intervals (``identifiability``: the CRP and RNAP scales as
multipliers on the fitted tables, G_I in kT; ``open`` when inside only because a side
of the interval is open).

    python benchmarks/recovery.py --links --sizes 10000 --seeds 2 --ways flexible,affine+gates
    python benchmarks/recovery.py --links --sizes 50000 --ways affine+gates --dispersion
    python benchmarks/recovery.py --links --sizes 50000 --ways affine+gates --finish lbfgs

The realistic truth is frozen in ``benchmarks/lac_realistic_truth.json`` (delete it to
refit it from the reads): the lac fit ends at a float-order-dependent point along its flat
G_I valley, so a truth refitted at every run re-drew the data whenever the code changed.
``--reads R``: R reads per cell (default 1). ``--dispersion``: fit with the read
dispersion the simulation records (docs/fitting.md, "Duplicated reads").
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bpm.runtime.fit import fit
from bpm.runtime.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]
LAC = ROOT / "models" / "lac.bpm"
KCAL = 0.6163314136449999
WILD_TYPE = (ROOT / "data" / "kinney2010" / "wild_type.txt").read_text().strip()


def published(name: str) -> np.ndarray:
    frame = pd.read_csv(ROOT / "data" / "kinney2010" / f"{name}_energy_matrix.csv")
    return frame[list("ACGT")].to_numpy(dtype=float) / KCAL


def pearson(a, b) -> float:
    a = np.asarray(a) - np.asarray(a).mean(1, keepdims=True)
    b = np.asarray(b) - np.asarray(b).mean(1, keepdims=True)
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def one(n: int, noise: float, seed: int = 0, **schedule) -> dict:
    wild_type = (ROOT / "data" / "kinney2010" / "wild_type.txt").read_text().strip()
    truth = {"G_C": published("crp"), "G_R": published("rnap"), "G_I": -2.83 / KCAL}
    table, sim = simulate(
        LAC,
        n=n,
        wild_type=wild_type,
        mutation_rate=0.115,
        params=truth,
        noise=noise,
        seed=seed,
    )
    start = time.perf_counter()
    result = fit(LAC, table, seed=seed, quiet=True, threads=1, **schedule)
    seconds = time.perf_counter() - start
    p = {k: v.detach().double().numpy() for k, v in result.module.get_params().items()}
    return {
        "n": n,
        "noise": noise,
        "rows": len(table),
        "r_CRP": pearson(p["G_C"], sim.params["G_C"]),
        "r_RNAP": pearson(p["G_R"], sim.params["G_R"]),
        "G_I_error_kT": float(p["G_I"]) - sim.params["G_I"],
        "fit_s": seconds,
    }


def slope(fitted, true) -> float:
    """The least-squares slope of fitted on true entries, both in the zero-mean gauge."""
    a = np.asarray(fitted) - np.asarray(fitted).mean(1, keepdims=True)
    b = np.asarray(true) - np.asarray(true).mean(1, keepdims=True)
    return float((a * b).sum() / (b * b).sum())


#: The realistic truth, frozen: the lac fit ends at a float-order-dependent point of its
#: flat G_I valley, so refitting it at every run would re-draw the benchmark's data.
TRUTH_FILE = ROOT / "benchmarks" / "lac_realistic_truth.json"


def realistic_truth(refit: bool = False) -> dict:
    """bpm's default fit of the shipped lac reads, as simulation parameters: read from
    :data:`TRUTH_FILE`, or fitted (and written there) when it is missing or ``refit``."""
    if TRUTH_FILE.exists() and not refit:
        saved = json.loads(TRUTH_FILE.read_text())
        return {k: np.asarray(v, dtype=float) for k, v in saved["params"].items()}
    result = fit(LAC, ROOT / "data" / "lac_sortseq_kinney2010.csv.gz", seed=0, quiet=True)
    params = {k: v.detach().double().numpy() for k, v in result.module.get_params().items()}
    record = {
        "what": "bpm's default fit of data/lac_sortseq_kinney2010.csv.gz (seed 0), the "
        "realistic truth of benchmarks/recovery.py --links",
        "params": {k: v.tolist() for k, v in params.items()},
    }
    TRUTH_FILE.write_text(json.dumps(record, indent=1) + "\n")
    return params


def multiplier(fitted, true, covariance=None) -> float:
    """The true size in multiples of the fitted table, what ``identifiability.energy_scale``
    intervals are in: 1 / the slope of fitted on true entries (fitted = slope x true +
    noise; the projection of the truth on the noisy fitted table would be biased low by
    the table's estimation noise, about r^2).

    With ``covariance`` (the fit's covariance of the table's entries, zero-mean gauge,
    everything else profiled out: ``Uncertainty.covariance``), the slope is the
    generalized least-squares one, weighted by the information ``F = pinv(covariance)``:
    ``t'F f / t'F t``. Its sampling spread is ``1 / sqrt(t'F t)``, the spread the profile
    over a multiplier on the fitted table assumes; the plain slope weighs every entry
    alike and spreads wider whenever the entries are not equally well measured, so an
    interval of the profile's width covers it less often than 95% (docs/simulation.md)."""
    if covariance is None:
        return 1.0 / slope(fitted, true)
    a = np.asarray(fitted) - np.asarray(fitted).mean(1, keepdims=True)
    b = np.asarray(true) - np.asarray(true).mean(1, keepdims=True)
    information = np.linalg.pinv(covariance, rcond=1e-10, hermitian=True)
    a, b = a.ravel(), b.ravel()
    return float((b @ information @ b) / (b @ information @ a))


def table_covariance(result, name: str):
    """The fit's covariance block of table ``name`` (zero-mean gauge), or None where the
    fit has no standard errors (not at an optimum). The analysis is made once per fit
    and kept on ``result.uncertainty`` for its other tables."""
    found = result.uncertainty or result.analyze_uncertainty()
    rows = [i for i, (n, _) in enumerate(found.coordinates) if n == name]
    block = found.covariance[np.ix_(rows, rows)]
    return block if np.isfinite(block).all() else None


def covered(entry: dict, true: float) -> str:
    """``yes`` / ``no`` whether ``true`` lies in the interval, ``open`` when it does only
    because a side is open."""
    low, high = entry["low"], entry["high"]
    if (low is not None and true < low) or (high is not None and true > high):
        return "no"
    return "yes" if low is not None and high is not None else "open"


def links(
    sizes,
    seeds,
    labels=("flexible", "affine", "affine+gates"),
    reads=1.0,
    dispersion=False,
    finish="auto",
) -> pd.DataFrame:
    """The matched/mismatched table of ``--links``, with whether the truth lies in each
    fit's 95% profile intervals (``in_*``: yes, no, or open: inside only by an open side).
    ``reads``: reads per cell (the simulator draws them with replacement within each bin,
    so at 1 a cell with reads has two on average, and the likelihood, which takes every
    read for an independent cell, counts its information twice). ``dispersion``: fit with
    the ``dispersion`` the simulation records (``read_dispersion``), widening the
    intervals by it. ``finish``: how each fit's polish ends (``bpm fit --finish``)."""
    truth = realistic_truth()
    rows = []
    for n in sizes:
        for seed in seeds:
            table, sim = simulate(LAC, n=n, wild_type=WILD_TYPE, mutation_rate=0.115,
                                  params=truth, noise=0.5, seed=100 + seed,
                                  reads=int(reads * n))  # fmt: skip
            gates = sim.meta["bin_edges_log_t"]
            ways = {"flexible": {}, "affine": {"link": "affine"},
                    "affine+gates": {"link": "affine", "gates": gates}}  # fmt: skip
            for label in labels:
                start = time.perf_counter()
                phi = sim.meta["read_dispersion"] if dispersion else 1.0
                result = fit(LAC, table, seed=0, quiet=True, threads=1, identifiability=True,
                             dispersion=phi, finish=finish, **ways[label])  # fmt: skip
                p = {k: v.detach().double().numpy() for k, v in result.module.get_params().items()}
                found = result.identifiability
                scales = found["energy_scale"]
                row = {
                    "n": n, "seed": 100 + seed, "link": label,
                    "r_CRP": pearson(p["G_C"], sim.params["G_C"]),
                    "scale_CRP": slope(p["G_C"], sim.params["G_C"]),
                    "r_RNAP": pearson(p["G_R"], sim.params["G_R"]),
                    "scale_RNAP": slope(p["G_R"], sim.params["G_R"]),
                    "G_I_error_kT": float(p["G_I"]) - sim.params["G_I"],
                    "in_CRP": covered(scales["G_C"], multiplier(p["G_C"], sim.params["G_C"])),
                    "in_RNAP": covered(scales["G_R"], multiplier(p["G_R"], sim.params["G_R"])),
                    "in_CRP_gls": covered_gls(result, scales, p, sim.params, "G_C"),
                    "in_RNAP_gls": covered_gls(result, scales, p, sim.params, "G_R"),
                    "in_G_I": covered(found["profile"]["G_I"], sim.params["G_I"]),
                    "CRP_interval": _span(scales["G_C"]),
                    "RNAP_interval": _span(scales["G_R"]),
                    "G_I_interval": _span(found["profile"]["G_I"]),
                    "at_optimum": found["at_optimum"],
                    "fit_s": time.perf_counter() - start,
                }  # fmt: skip
                rows.append(row)
                print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def covered_gls(result, scales: dict, fitted: dict, true: dict, name: str) -> str:
    """:func:`covered` for the information-weighted true multiplier (:func:`multiplier`
    with the fit's covariance); ``n/a`` where the fit has no covariance."""
    covariance = table_covariance(result, name)
    if covariance is None:
        return "n/a"
    return covered(scales[name], multiplier(fitted[name], true[name], covariance))


def _span(entry: dict) -> str:
    low = "open" if entry["low"] is None else f"{entry['low']:.2f}"
    high = "open" if entry["high"] is None else f"{entry['high']:.2f}"
    return f"{low}-{high}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also fit 10^6 sequences")
    parser.add_argument("--skip-fits", action="store_true", help="only time the simulation")
    parser.add_argument("--steps", type=int, help="most Adam steps (fit's default: 200)")
    parser.add_argument("--patience", type=int, help="Adam's patience (fit's default: 6)")
    parser.add_argument("--links", action="store_true", help="the matched/mismatched table")
    parser.add_argument("--sizes", default="10000,50000,100000", help="cells, with --links")
    parser.add_argument("--seeds", type=int, default=5, help="simulation seeds, with --links")
    parser.add_argument("--ways", default="flexible,affine,affine+gates", help="with --links")
    parser.add_argument(
        "--reads", type=float, default=1.0, help="reads per cell, with --links (default 1)"
    )
    parser.add_argument(
        "--dispersion",
        action="store_true",
        help="with --links: fit with the read dispersion the simulation records",
    )
    parser.add_argument(
        "--finish", default="auto", choices=("auto", "newton", "lbfgs"),
        help="with --links: how each fit's polish ends (bpm fit --finish; default auto)",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.links:
        sizes = [int(v) for v in args.sizes.split(",")]
        ways = tuple(args.ways.split(","))
        frame = links(sizes, range(args.seeds), ways, args.reads, args.dispersion, args.finish)
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        quantities = ["in_CRP", "in_CRP_gls", "in_RNAP", "in_RNAP_gls", "in_G_I"]
        inside = frame.melt(["n", "link"], quantities, "quantity", "in")
        print(inside.groupby(["n", "link", "quantity"])["in"].value_counts().unstack(fill_value=0))
        summary = frame.groupby(["n", "link"])[["r_CRP", "scale_CRP", "r_RNAP", "scale_RNAP",
                                                "G_I_error_kT"]]  # fmt: skip
        print(summary.agg(["mean", "min", "max"]).to_string(float_format=lambda v: f"{v:.3f}"))
        return
    if not args.skip_fits:
        sizes = [1_000, 10_000, 100_000] + ([1_000_000] if args.large else [])
        schedule = {k: v for k, v in (("steps", args.steps), ("patience", args.patience)) if v}
        rows = [one(n, 0.5, **schedule) for n in sizes]
        rows += [one(50_000, noise, **schedule) for noise in (0.25, 1.0, 2.0)]
        print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    wild_type = (ROOT / "data" / "kinney2010" / "wild_type.txt").read_text().strip()
    start = time.perf_counter()
    table, _ = simulate(LAC, n=1_000_000, wild_type=wild_type, mutation_rate=0.115, seed=0)
    print(
        f"simulate 1,000,000 lac sequences: {time.perf_counter() - start:.1f} s "
        f"({len(table)} unique sequences with reads)"
    )


if __name__ == "__main__":
    main()
