"""A saved fit directory (``bpm fit ... -o DIR``) back in memory, and predictions from it.

``load_fit(DIR)`` reads what :func:`bpm.runtime.report.write_report` wrote into a
:class:`~bpm.runtime.result.FitResult` whose predictions equal the original's;
``predict(DIR, sequences)`` gives the output and the state probabilities of new
sequences. Directories written before ``steps`` replaced ``epochs`` (model.pt format 1)
and whose model.py carries ``_storage`` instead of ``parameter_layout`` load too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import pandas as pd
import torch

from bpm.compiler.errors import BpmError

from .measurement import OrdinalMeasurement
from .measurement_affine import AffineMeasurement
from .predict import predictions, read_sequences
from .report import FORMAT, SPLIT_KEYS
from .result import FitResult

REQUIRED = ("model.py", "model.pt")


def import_source(path: Path) -> type:
    """The ``Model`` class of a generated module file, imported under a name made from
    a hash of its text (the same file imports once)."""
    text = path.read_text()
    name = "bpm_fit_" + hashlib.sha256(text.encode()).hexdigest()[:20]
    if name in sys.modules:
        return sys.modules[name].Model
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.Model


def load_fit(directory: str | Path, device: str = "cpu") -> FitResult:
    """A saved fit (``bpm fit ... -o DIR``) as a FitResult, ready to predict."""
    directory = Path(directory)
    for required in REQUIRED:
        if not (directory / required).exists():
            raise BpmError(f"{directory} is not a fit directory: {required} is missing")
    cls = import_source(directory / "model.py")
    saved = torch.load(directory / "model.pt", map_location=device, weights_only=True)
    if saved.get("format", 1) > FORMAT:
        raise BpmError(
            f"{directory} was written by a newer bpm (model.pt format {saved['format']}; "
            f"this one reads up to {FORMAT})"
        )
    module = cls().to(device)
    module.load_state_dict(saved["module_state"])
    measurement = build_measurement(saved["measurement_config"]).to(device)
    measurement.load_state_dict(saved["measurement_state"])
    module.eval()
    measurement.eval()
    info = saved["summary"]
    return FitResult(
        module=module,
        measurement=measurement,
        output=saved["output"],
        metrics={
            split: info["metrics"].get(split, info["metrics"].get(short))
            for short, split in SPLIT_KEYS
        },  # fmt: skip
        history=saved["history"],
        steps=info["steps"] if "steps" in info else info["epochs"],  # format 1: "epochs"
        stages=list(info.get("stages", [])),
        convergence=dict(info.get("convergence", {})),
        notes=list(info.get("notes", [])),
        wall_seconds=info["wall_seconds"],
        seed=info["seed"],
        data_summary=info["data_validation"],
        sizes={"training": info["n_train"], "validation": info["n_val"], "test": info["n_test"]},
        source=(directory / "model.py").read_text(),
        model_path=info["model"],
        data_path=info["data"],
        profile=list(info.get("profile", [])),
    )


def build_measurement(config: dict):
    """The measurement process a saved ``measurement_config`` describes: its ``kind``
    names the class (``affine``: :class:`AffineMeasurement`); configs without one were
    written for the flexible :class:`OrdinalMeasurement`."""
    config = dict(config)
    kind = config.pop("kind", "flexible")
    if kind == "affine":
        return AffineMeasurement(**config)
    if kind == "flexible":
        return OrdinalMeasurement(**config)
    raise BpmError(f"unknown measurement process kind {kind!r} in model.pt")


def predict(fit_dir, sequences) -> pd.DataFrame:
    """The output and state probabilities of ``sequences`` under the fit saved in
    ``fit_dir`` (a directory, or a FitResult); ``sequences`` a list, or a file of them."""
    result = load_fit(fit_dir) if isinstance(fit_dir, (str, Path)) else fit_dir
    if isinstance(sequences, Path):
        sequences = read_sequences(str(sequences))
    return predictions(result, sequences)
