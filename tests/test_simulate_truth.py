"""Truth CSVs from bpm simulate read as a fit's params/ do (issue 15): rows by position in
the full sequence, on the top strand, so truth and fit compare line for line; and they
read back into the module's own order."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from bpm.compiler import load
from bpm.runtime.simulate import simulate, write
from bpm.runtime.tables import fix_gauge, matrix_frame, top_strand_terms
from bpm.runtime.truth import read_params

MODEL = """
model strands
sequence x: dna[30]
energy G_fwd = matrix(x[2:10])
energy G_rev = matrix(revcomp(x[14:24]))
thermodynamic {
    empty : 0
    fwd   : G_fwd
    rev   : G_rev
}
output t = P(fwd) + P(rev)
"""


def test_truth_tables_use_the_fits_positions_and_strand(tmp_path):
    table, truth = simulate(MODEL, n=200, bins=3, seed=2)
    write(table, truth, tmp_path / "sim.csv")
    doc = json.loads((tmp_path / "sim.truth.json").read_text())
    module = load(MODEL)()
    module.set_params({k: np.asarray(v, dtype=np.float32) for k, v in truth.params.items()})
    terms = top_strand_terms(module)
    for name, start, width in (("G_fwd", 2, 8), ("G_rev", 14, 10)):
        written = pd.read_csv(tmp_path / doc["matrices"][name])
        assert written["position"].tolist() == list(range(start, start + width))
        # what bpm fit -o would write for these very parameters (zero-mean gauge)
        fitted = matrix_frame(fix_gauge(terms[name], "zero-mean")).reset_index()
        np.testing.assert_allclose(written[list("ACGT")], fitted[list("ACGT")], atol=1e-6)
        assert fitted["position"].tolist() == written["position"].tolist()
    stored = truth.params["G_rev"]
    top = pd.read_csv(tmp_path / doc["matrices"]["G_rev"])[list("ACGT")].to_numpy()
    np.testing.assert_allclose(top, stored[::-1][:, [3, 2, 1, 0]])  # reversed, complemented
    back = read_params(tmp_path / "sim.truth.json", module)
    for name in ("G_fwd", "G_rev"):
        np.testing.assert_allclose(back[name], truth.params[name], atol=1e-9)
