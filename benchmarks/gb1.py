"""GB1 (Olson et al. 2014; docs/gb1.md): the default fit of models/gb1.bpm on the score
``y`` of 530,737 double mutants, and the same model on the raw count pair
(``--counts input_ct,selected_ct``); prints test I_var, I_pred, R^2 against ``y``, wall
time (start-up included) and peak memory, beside MAVE-NN's published figures.

    python benchmarks/gb1.py                 # both fits, into $TMPDIR/bpm_gb1
    python benchmarks/gb1.py --scores-only

MAVE-NN (Tareen et al. 2022, Fig. 6; three-state model, GE skewed-t noise): test I_var
2.303 +- 0.013 bits (tutorial 2.320 +- 0.015), I_pred 2.357 +- 0.007 bits, R^2 0.947,
1,062 s of training.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from real_fits import ROOT, count_pair_r2, header, row, run_fit

DATA = ROOT / "data" / "gb1_olson2014.csv.gz"
MODEL = ROOT / "models" / "gb1.bpm"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores-only", action="store_true")
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "bpm_gb1"))
    args = parser.parse_args()
    out = Path(args.out)
    print(header())
    scores = run_fit([str(MODEL), str(DATA)], out / "scores")
    print(row("bpm, score y (default)", scores), flush=True)
    if not args.scores_only:
        pair = ["--counts", "input_ct,selected_ct"]
        counts = run_fit([str(MODEL), str(DATA), *pair], out / "counts")
        print(row("bpm, count pair input_ct,selected_ct", counts,
                  count_pair_r2(out / "counts", DATA)))  # fmt: skip
    print("| MAVE-NN (paper, Fig. 6) | 2.303 | 2.357 | 0.947 | 1062 (training) | |")
    print("| MAVE-NN (tutorial) | 2.320 | 2.355 | | | |")


if __name__ == "__main__":
    main()
