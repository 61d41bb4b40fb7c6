"""Streaming and full batch reach the same optimum on the same data (issue 12).

Data drawn from the process the fit assumes (``bpm simulate``: log brightness = log t +
noise, sorted at recorded gates, a floor and background reads), fitted with that
process (``link="affine"`` at the gates), where the training optimum is well defined;
both paths run the polish to it (``stop="training"``). Minibatch Adam and full-batch
Adam leave the polish different starting points; the optimum must not depend on them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bpm.runtime.fit import fit
from bpm.runtime.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]
LAC = ROOT / "models" / "lac.bpm"
KCAL = 0.6163314136449999


def _kinney(name: str) -> np.ndarray:
    frame = pd.read_csv(ROOT / "data" / "kinney2010" / f"{name}_energy_matrix.csv")
    return frame[list("ACGT")].to_numpy(dtype=float) / KCAL


def _zero_mean(matrix) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=float)
    return matrix - matrix.mean(1, keepdims=True)


@pytest.mark.slow
def test_stream_and_full_batch_reach_the_same_optimum(tmp_path):
    truth = {"G_C": _kinney("crp"), "G_R": _kinney("rnap"), "G_I": -2.83 / KCAL}
    wild_type = (ROOT / "data" / "kinney2010" / "wild_type.txt").read_text().strip()
    table, sim = simulate(
        LAC, n=40_000, reads=10_000, wild_type=wild_type, mutation_rate=0.115, params=truth,
        noise=0.5, floor=1e-3, background=0.05, seed=5,
    )  # fmt: skip
    path = tmp_path / "sim.csv.gz"
    table.to_csv(path, index=False)
    options = dict(
        link="affine", gates=sim.meta["bin_edges_log_t"], stop="training", quiet=True,
        threads=1, seed=0, cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    fits = {mode: fit(LAC, path, mode=mode, **options) for mode in ("full", "stream")}
    assert fits["stream"].dataset is None  # it did stream (no table in memory)
    assert fits["stream"].data_summary["training"]["mode"] == "stream"
    for result in fits.values():
        assert result.convergence["converged"], result.convergence
    full, stream = (fits[m].module.get_params() for m in ("full", "stream"))
    assert abs(float(full["G_I"]) - float(stream["G_I"])) <= 0.2
    for name in ("G_C", "G_R"):
        r = np.corrcoef(_zero_mean(full[name]).ravel(), _zero_mean(stream[name]).ravel())[0, 1]
        assert r >= 0.995, (name, r)
    # the same likelihood at the end, on every split
    for split in ("training", "validation", "test"):
        a, b = (fits[m].metrics[split]["nll"] for m in ("full", "stream"))
        assert abs(a - b) < 1e-3, (split, a, b)
