"""Recovery accuracy of the lac model on simulated sort-seq data, and simulation speed.

Ground truth: the Kinney et al. (2010) CRP and RNAP matrices (kT) and G_I = -2.83
kcal/mol; library around the lac wild type at the real mutation rate (0.115). Prints
Pearson r of each fitted matrix against the truth (zero-mean gauge) and the G_I error,
against the number of sequences and against the readout noise, then the time to
simulate 1,000,000 sequences.

    python benchmarks/recovery.py            # 10^3..10^5 sequences (a few minutes)
    python benchmarks/recovery.py --large    # adds 10^6
    python benchmarks/recovery.py --steps 800 --patience 40   # a longer Adam stage
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also fit 10^6 sequences")
    parser.add_argument("--skip-fits", action="store_true", help="only time the simulation")
    parser.add_argument("--steps", type=int, help="most Adam steps (fit's default: 200)")
    parser.add_argument("--patience", type=int, help="Adam's patience (fit's default: 6)")
    args = parser.parse_args()
    torch.set_num_threads(1)
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
