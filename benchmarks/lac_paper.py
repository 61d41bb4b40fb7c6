"""Reproduce the lac fit of Kinney et al. (2010) / Tareen & Kinney (2019) with bpm.

Fits models/lac.bpm to the shipped sort-seq data with default settings for several
seeds and prints, per seed and as mean ± sd: Pearson r of the CRP and RNAP matrices
against the published ones (both in the zero-mean gauge, kcal/mol), the CRP-RNAP
interaction G_I in kcal/mol, test I_var in bits and the fit's wall time. Then fits the
kinetic models/open_complex.bpm once and correlates its RNAP matrix with the
thermodynamic fit's.

    python benchmarks/lac_paper.py            # 5 seeds
    python benchmarks/lac_paper.py --seeds 2 --no-kinetic
    python benchmarks/lac_paper.py --profile=-1,-3,-5,-7   # profile over G_I, best released

Published: r = 0.986 (CRP) / 0.994 (RNAP), G_I = -2.9 kcal/mol (Tareen & Kinney 2019);
MAVE-NN 1.1.4: test I_var 0.674 ± 0.014 bits, G_I = -2.77 kcal/mol.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bpm.runtime import fit
from bpm.runtime.profile import profile

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "lac_sortseq_kinney2010.csv.gz"
KINNEY = ROOT / "data" / "kinney2010"


def zero_mean(matrix: np.ndarray) -> np.ndarray:
    return matrix - matrix.mean(axis=1, keepdims=True)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(zero_mean(a).ravel(), zero_mean(b).ravel())[0, 1])


def published(name: str) -> np.ndarray:
    return pd.read_csv(KINNEY / f"{name}_energy_matrix.csv")[list("ACGT")].to_numpy()


def one_seed(seed: int, values=None) -> dict:
    start = time.perf_counter()
    if values:
        result = profile(ROOT / "models" / "lac.bpm", DATA, "G_I", values, seed=seed, quiet=True)
        for row in result.profile:
            print(
                f"  seed {seed} G_I held at {row['value']:+.1f} kT: NLL train/val/test "
                f"{row['train_nll']:.5f}/{row['val_nll']:.5f}/{row['test_nll']:.5f} bits"
            )
    else:
        result = fit(ROOT / "models" / "lac.bpm", DATA, seed=seed, quiet=True)
    wall = time.perf_counter() - start
    kT = result.kT_kcal_per_mol
    params = result.params()
    return {
        "seed": seed,
        "r_CRP": pearson(params["G_C"].numpy() * kT, published("crp")),
        "r_RNAP": pearson(params["G_R"].numpy() * kT, published("rnap")),
        "G_I_kcal": float(params["G_I"]) * kT,
        "test_I_var": result.metrics["test"]["I_var_bits"],
        "nll": {k: v["nll"] for k, v in result.metrics.items()},
        "steps": result.steps,
        "wall_s": wall,
        "_G_R": params["G_R"].numpy(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--no-kinetic", dest="kinetic", action="store_false")
    parser.add_argument(
        "--profile", help="G_I values in kT, comma-separated: profile, then release"
    )
    args = parser.parse_args(argv)
    values = [float(v) for v in args.profile.split(",")] if args.profile else None
    rows = []
    for seed in range(args.seeds):
        row = one_seed(seed, values)
        rows.append(row)
        print(
            f"seed {seed}: r_CRP {row['r_CRP']:.4f}  r_RNAP {row['r_RNAP']:.4f}  "
            f"G_I {row['G_I_kcal']:+.2f} kcal/mol  test I_var {row['test_I_var']:.4f} bits  "
            f"NLL train/val/test {row['nll']['training']:.5f}/{row['nll']['validation']:.5f}/"
            f"{row['nll']['test']:.5f} bits  {row['steps']} steps  {row['wall_s']:.1f} s",
            flush=True,
        )
    print("\nmean ± sd over", len(rows), "seeds")
    for key, unit in (
        ("r_CRP", ""),
        ("r_RNAP", ""),
        ("G_I_kcal", " kcal/mol"),
        ("test_I_var", " bits"),
        ("wall_s", " s"),
    ):
        values = [r[key] for r in rows]
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"  {key:11s} {statistics.mean(values):+.4f} ± {sd:.4f}{unit}")
    print(
        "published: r_CRP 0.986, r_RNAP 0.994, G_I -2.9 kcal/mol (2019); "
        "MAVE-NN test I_var 0.674 ± 0.014 bits"
    )
    if args.kinetic:
        start = time.perf_counter()
        kinetic = fit(ROOT / "models" / "open_complex.bpm", DATA, seed=0, quiet=True)
        r = pearson(kinetic.params()["G_R"].numpy(), rows[0]["_G_R"])
        print(
            f"\nopen_complex (kinetic): RNAP matrix r vs the thermodynamic fit {r:.4f}, "
            f"vs Kinney 2010 {pearson(kinetic.params()['G_R'].numpy(), published('rnap')):.4f}, "
            f"test I_var {kinetic.metrics['test']['I_var_bits']:.4f} bits, "
            f"{time.perf_counter() - start:.1f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
