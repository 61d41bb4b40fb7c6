"""Shared by benchmarks/gb1.py and benchmarks/mpsa.py: run a default `bpm fit` command in
its own process, time it (wall, start-up included) and take its peak memory, then read
the fit directory's test metrics and, for a fit to a count pair, the R^2 of its
prediction against the table's score column ``y`` on the test split.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
#: The child: ``bpm`` with its arguments, then its own peak RSS (kB) as the last line.
CHILD = (
    "import resource, sys\n"
    "from bpm.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def run_fit(args: list[str], out: Path) -> dict:
    """``bpm fit ARGS -o OUT --quiet`` in a child process: wall seconds, the child's
    peak RSS (MB) and summary.json."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, "fit", *args, "-o", str(out), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"bpm fit {' '.join(args)} failed:\n{done.stderr}")
    peak_kb = int(done.stderr.strip().splitlines()[-1])
    summary = json.loads((out / "summary.json").read_text())
    return {"wall_s": wall, "peak_MB": peak_kb / 1024, "summary": summary}


def count_pair_r2(fit_dir: Path, data: Path) -> float:
    """R^2 of a count-pair fit's predicted log odds of selection, ``log2(p / (1 - p))``
    (what a log2 enrichment estimates, up to a constant), with ``y`` on the test split."""
    import pandas as pd

    from bpm.runtime.information import r_squared
    from bpm.runtime.load import predict

    table = pd.read_csv(data, dtype={"x": str})
    test = table[table["set"] == "test"]
    p = predict(fit_dir, list(test["x"]))["selected_fraction"].to_numpy()
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return r_squared(np.log2(p / (1 - p)), test["y"].to_numpy())


def row(name: str, found: dict, r2=None) -> str:
    test = found["summary"]["metrics"]["test"]
    r2 = test.get("R2") if r2 is None else r2
    fmt = lambda v: "" if v is None else f"{v:.3f}"  # noqa: E731
    return (f"| {name} | {fmt(test['I_var_bits'])} | {fmt(test.get('I_pred_bits'))} | "
            f"{fmt(r2)} | {found['wall_s']:.1f} | {found['peak_MB']:.0f} |")  # fmt: skip


def header() -> str:
    load = os.getloadavg()[0]
    return (f"load average {load:.1f} at start\n\n| fit | test I_var bits | test I_pred bits | "
            "test R2 vs y | wall s | peak MB |\n|---|---|---|---|---|---|")  # fmt: skip
