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


def test_params_are_in_the_gauge_of_summary_json(tmp_path):
    import numpy as np
    import torch

    from bpm.compiler import load

    data = tmp_path / "sim.csv"
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["simulate", SIMPLE, "-o", str(data), "--n", "300", "--bins", "3"]) == 0
    result = fit(SIMPLE, str(data), steps=3, polish=0, quiet=True)
    result.save(tmp_path / "fit", plots=False)
    info = json.loads((tmp_path / "fit" / "summary.json").read_text())
    params = result.params()
    for name in ("G_P", "G_R"):
        assert float(params[f"{name}.offset"]) == np.float32(info["params"][f"{name}.offset"])
        assert torch.allclose(params[name].mean(1), torch.zeros(()), atol=1e-6)  # zero-mean
    stored = result.params(gauge=None)
    assert not torch.allclose(stored["G_R"].mean(1), torch.zeros(()), atol=1e-3)
    # the same model: every energy and output unchanged
    again = load(SIMPLE)()
    again.set_params(params)
    x = result.dataset.codes[:50].astype(np.int64)
    with torch.no_grad():
        torch.testing.assert_close(again(torch.from_numpy(x)), result.module(torch.from_numpy(x)))
