"""Do the streaming and the full-batch fit reach the same optimum? (issue 12, docs/scale.md)

Fits the same file both ways (``mode="full"`` and ``mode="stream"``) with the polish
stopped on the training optimum and on the validation reads, and prints G_I, the
difference, the correlation of the two fits' matrices (zero-mean gauge) and the NLLs:

    python benchmarks/stream_agreement.py             # matched simulated lac data (affine, gates)
    python benchmarks/stream_agreement.py --lac       # the shipped lac reads (default link)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bpm.runtime.fit import fit
from bpm.runtime.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]
LAC = ROOT / "models" / "lac.bpm"
KCAL = 0.6163314136449999


def kinney(name: str) -> np.ndarray:
    frame = pd.read_csv(ROOT / "data" / "kinney2010" / f"{name}_energy_matrix.csv")
    return frame[list("ACGT")].to_numpy(dtype=float) / KCAL


def zero_mean(matrix) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=float)
    return matrix - matrix.mean(1, keepdims=True)


def compare(path: Path, options: dict, cache: str) -> None:
    for stop in ("training", "validation"):
        fits, seconds = {}, {}
        for mode in ("full", "stream"):
            started = time.perf_counter()
            fits[mode] = fit(LAC, path, mode=mode, stop=stop, cache_dir=cache, **options)
            seconds[mode] = time.perf_counter() - started
        full, stream = (fits[m].module.get_params() for m in ("full", "stream"))
        r = [
            np.corrcoef(zero_mean(full[n]).ravel(), zero_mean(stream[n]).ravel())[0, 1]
            for n in ("G_C", "G_R")
        ]
        g = [float(full["G_I"]), float(stream["G_I"])]
        nll = [fits[m].metrics["training"]["nll"] for m in ("full", "stream")]
        test = [fits[m].metrics["test"]["I_var_bits"] for m in ("full", "stream")]
        steps = [fits[m].stages[-1]["iterations"] for m in ("full", "stream")]
        print(
            f"| {stop} | {g[0]:.4f} | {g[1]:.4f} | {abs(g[0] - g[1]):.4f} | {r[0]:.7f} / "
            f"{r[1]:.7f} | {nll[0]:.6f} / {nll[1]:.6f} | {test[0]:.4f} / {test[1]:.4f} | "
            f"{steps[0]} / {steps[1]} | {seconds['full']:.0f} / {seconds['stream']:.0f} |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lac", action="store_true", help="the shipped lac reads, default link")
    p.add_argument("--cells", type=int, default=100_000)
    p.add_argument("--reads", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=5, help="the simulation's seed")
    a = p.parse_args()
    print("| polish stops on | full G_I (kT) | stream G_I (kT) | Delta G_I | r CRP / RNAP | "
          "train NLL full / stream | test I_var | polish iterations | seconds |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    options = {"quiet": True, "threads": 1, "seed": 0}
    with tempfile.TemporaryDirectory() as tmp:
        if a.lac:
            compare(ROOT / "data" / "lac_sortseq_kinney2010.csv.gz", options, tmp)
            return
        truth = {"G_C": kinney("crp"), "G_R": kinney("rnap"), "G_I": -2.83 / KCAL}
        wild_type = (ROOT / "data" / "kinney2010" / "wild_type.txt").read_text().strip()
        table, sim = simulate(
            LAC, n=a.cells, reads=a.reads, wild_type=wild_type, mutation_rate=0.115,
            params=truth, noise=0.5, floor=1e-3, background=0.05, seed=a.seed,
        )  # fmt: skip
        path = Path(tmp) / "sim.csv.gz"
        table.to_csv(path, index=False)
        options.update(link="affine", gates=sim.meta["bin_edges_log_t"])
        compare(path, options, tmp)


if __name__ == "__main__":
    main()
