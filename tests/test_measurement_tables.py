"""Tables that cannot inform a fit are refused before it starts, and the summary of a
score table speaks of sequences scored, not of reads or bins."""

import numpy as np
import pandas as pd
import pytest

from bpm.compiler.errors import BpmDataError
from bpm.runtime.observations import describe, read_observations

SEQS = ["ACGTAC", "ACGTTC", "AGGTAC", "ACCTAC", "TCGTAC", "ACGAAC"]


def test_a_constant_score_is_refused_with_its_value():
    frame = pd.DataFrame({"x": SEQS, "y": [1.5] * 6})
    with pytest.raises(BpmDataError, match="every 'y' is 1.5"):
        read_observations(frame)


def test_a_count_column_without_reads_is_refused():
    frame = pd.DataFrame({"x": SEQS, "a": [3, 4, 5, 6, 7, 8], "b": [0] * 6})
    with pytest.raises(BpmDataError, match=r"count column \['b'\] has no reads"):
        read_observations(frame, count_columns=["a", "b"])


def test_a_score_summary_counts_sequences_and_names_its_columns():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": SEQS, "y": rng.normal(size=6), "dy": [0.1] * 6})
    found = read_observations(frame)
    summary = found.summary
    assert summary["measurement"] == "continuous" and found.kind == "continuous"
    assert summary["sequences_scored"] == 6
    assert "reads" not in summary and "bins" not in summary
    assert describe(summary) == "continuous (score 'y', standard errors 'dy')"
    assert found.counts.shape == (6, 3) and (found.counts[:, 0] == 1).all()


def test_a_nested_pair_is_read_as_excluded_and_included_reads():
    frame = pd.DataFrame({"x": SEQS, "tot": [10, 4, 5, 6, 7, 8], "inc": [3, 4, 0, 1, 2, 8]})
    found = read_observations(frame, count_columns=["tot", "inc"], pair="nested")
    assert found.counts[:, 0].tolist() == [7, 0, 5, 5, 5, 0]
    assert found.counts[:, 1].tolist() == [3, 4, 0, 1, 2, 8]
    assert describe(found.summary) == "counts (a nested count pair: tot, inc)"
