"""The Python API's names agree with the files (issue 15): one naming of the splits in
FitResult.metrics and summary.json, and fits saved with the old names still load."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from bpm.cli import main
from bpm.runtime import fit, load_fit

ROOT = Path(__file__).parent.parent
SIMPLE = str(ROOT / "models" / "simple_repression.bpm")


def test_metrics_are_named_alike_in_the_result_and_summary_json(tmp_path):
    data = tmp_path / "sim.csv"
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["simulate", SIMPLE, "-o", str(data), "--n", "300", "--bins", "3"]) == 0
    result = fit(SIMPLE, str(data), steps=2, polish=0, quiet=True)
    assert set(result.metrics) == {"training", "validation", "test"}
    result.save(tmp_path / "fit", plots=False)
    saved = json.loads((tmp_path / "fit" / "summary.json").read_text())["metrics"]
    assert saved == json.loads(json.dumps(result.metrics))
    assert load_fit(tmp_path / "fit").metrics == saved


def test_a_fit_saved_with_the_short_split_names_loads_with_the_long_ones():
    old = ROOT / "tests" / "data" / "fit_v1"
    short = json.loads((old / "summary.json").read_text())["metrics"]
    assert set(short) == {"train", "val", "test"}
    loaded = load_fit(old)
    assert loaded.metrics == {"training": short["train"], "validation": short["val"],
                              "test": short["test"]}  # fmt: skip
