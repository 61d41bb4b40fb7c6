"""Do the scale intervals hold the truth? The one-site model over many simulations (issue 12).

Each seed simulates the one-site model of ``tests/test_identifiability.py`` (12
positions, 6,000 cells, mutation rate 0.2, one read per cell), fits it with the process
it was drawn from (affine link at the recorded gates) and the reads' own dispersion, and
scores the 95% scale interval (``identifiability.energy_scale.G``) against the true
multiplier two ways (``benchmarks/recovery.py``'s ``multiplier``): the plain regression
of fitted on true entries and the information-weighted one. Prints one row per seed,
then how often the truth is outside and the rms of z = (truth - 1) / half-width x 1.96
(1 when calibrated):

    python benchmarks/scale_coverage.py --seeds 40      # about 10 min on two cores
"""

from __future__ import annotations

import argparse
import importlib.util
import math
from pathlib import Path

import torch

from bpm.runtime.fit import fit
from bpm.runtime.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]
ONE = (ROOT / "benchmarks" / "one_site.bpm").read_text()


def recovery():
    spec = importlib.util.spec_from_file_location("recovery", ROOT / "benchmarks" / "recovery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_seed(seed: int, bench) -> dict:
    table, sim = simulate(ONE, n=6000, mutation_rate=0.2, seed=seed, noise=0.5)
    phi = sim.meta["read_dispersion"]
    gates = sim.meta["bin_edges_log_t"]
    result = fit(ONE, table, seed=0, quiet=True, threads=1, link="affine", gates=gates,
                 identifiability=True, dispersion=phi, processes=1)  # fmt: skip
    entry = result.identifiability["energy_scale"]["G"]
    fitted = result.module.get_params()["G"].double().numpy()
    covariance = bench.table_covariance(result, "G")
    plain = bench.multiplier(fitted, sim.params["G"])
    weighted = math.nan
    if covariance is not None:
        weighted = bench.multiplier(fitted, sim.params["G"], covariance)
    closed = entry["low"] is not None and entry["high"] is not None
    half = (entry["high"] - entry["low"]) / 2 if closed else math.nan
    return {
        "seed": seed, "dispersion": phi, "low": entry["low"], "high": entry["high"],
        "plain": plain, "weighted": weighted,
        "z_plain": 1.96 * (plain - 1) / half, "z_weighted": 1.96 * (weighted - 1) / half,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)
    bench = recovery()
    rows = []
    for seed in range(args.seeds):
        rows.append(one_seed(seed, bench))
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()})
    for kind in ("plain", "weighted"):
        z = [r[f"z_{kind}"] for r in rows if math.isfinite(r[f"z_{kind}"])]
        rms = math.sqrt(sum(v * v for v in z) / len(z)) if z else math.nan
        outside = sum(abs(v) > 1.96 for v in z)
        print(f"{kind}: truth outside {outside} of {len(z)} closed intervals, rms z {rms:.2f}, "
              f"mean z {sum(z) / max(len(z), 1):+.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
