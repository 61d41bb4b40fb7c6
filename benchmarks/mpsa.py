"""MPSA (Wong et al. 2018; docs/mpsa.md): the default fit of models/mpsa.bpm (pairwise
energy over the 9 positions of the 5' splice site) on the score ``y`` of 30,483 splice
sites, and on the raw count pair (``--counts tot_ct,ex_ct``, separate read sets); prints
test I_var, I_pred, R^2 against ``y``, wall time (start-up included) and peak memory,
beside MAVE-NN's published figures.

    python benchmarks/mpsa.py

MAVE-NN tutorial 3 (GE regression, test I_pred): additive 0.219, neighbor 0.341,
pairwise 0.358, black box 0.455 bits; 30 to 65 s of training.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from real_fits import ROOT, count_pair_r2, header, row, run_fit

DATA = ROOT / "data" / "mpsa_wong2018.csv.gz"
MODEL = ROOT / "models" / "mpsa.bpm"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "bpm_mpsa"))
    args = parser.parse_args()
    out = Path(args.out)
    print(header())
    scores = run_fit([str(MODEL), str(DATA)], out / "scores")
    print(row("bpm pairwise, score y (default)", scores), flush=True)
    counts = run_fit([str(MODEL), str(DATA), "--counts", "tot_ct,ex_ct"], out / "counts")
    print(row("bpm pairwise, count pair tot_ct,ex_ct", counts,
              count_pair_r2(out / "counts", DATA)))  # fmt: skip
    print("| MAVE-NN pairwise (tutorial 3) | | 0.358 | | 30-65 (training) | |")
    print("| MAVE-NN black box (tutorial 3) | | 0.455 | | | |")


if __name__ == "__main__":
    main()
