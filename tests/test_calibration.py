"""Calibrated standard errors (issue 12): z-scores over 20 simulated refits.

Each round draws a new experiment from ``bpm simulate`` (a two-site model with lac's
structure, new random matrices, library and reads) and fits it with the process it was
drawn from (affine link at the recorded gates, polished to the training optimum); z =
(estimate - truth) / SE for G_I and every matrix entry, zero-mean gauge on both sides,
once with the Hessian's errors (rounds at an optimum) and once with the bootstrap's.
``benchmarks/calibration.py`` does the work and prints the same numbers (docs/fitting.md,
"Bootstrap"). Measured 2026-12-02 with the L-BFGS polish: matrix entries rms z 1.09
(Hessian) and 1.03 (bootstrap); G_I 0.78 (Hessian, 17 rounds at an optimum) and 1.08
(bootstrap, all 20). Since 2026-12-04 the affine link's polish starts with Newton steps
(``finish="auto"``): every round ends at an optimum (48 of 48) and G_I's Hessian rms z
is 0.88 (matrix entries 1.12), so the Hessian's G_I is asserted calibrated too; for the
bootstrap's G_I only the side that matters for trust (errors not too small).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _benchmark():
    path = ROOT / "benchmarks" / "calibration.py"
    spec = importlib.util.spec_from_file_location("calibration", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("BPM_LONG"),
    reason="20 simulated rounds with bootstrap refits take 5 to 25 min on two cores; "
    "run with BPM_LONG=1 (or python benchmarks/calibration.py)",
)
def test_standard_errors_are_calibrated_over_twenty_simulated_refits():
    bench = _benchmark()
    found = bench.calibration(bench.TWO_SITES, 20, jobs=2, **bench.TEST_SETTINGS)["summary"]
    assert found["at_optimum"] >= 19, found
    for kind in ("hessian", "bootstrap"):
        assert 0.8 <= found[f"{kind}_matrices"] <= 1.25, (kind, found)
        assert found[f"{kind}_G_I"] <= 1.25, (kind, found)  # not over-confident
    assert 0.8 <= found["hessian_G_I"], found
