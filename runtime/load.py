"""A saved fit directory (``bpm fit ... -o DIR``) back in memory, and predictions from it.

``load_fit(DIR)`` reads what :func:`bpm.runtime.report.write_report` wrote into a
:class:`~bpm.runtime.result.FitResult` whose predictions equal the original's;
``predict(DIR, sequences)`` gives the output and the state probabilities of new
sequences. Loading runs no code from the directory: the module is rebuilt from the
model source the fit recorded (:mod:`bpm.runtime.fit_source`). Directories written
before ``steps`` replaced ``epochs`` (model.pt format 1), whose model.py carries
``_storage`` instead of ``parameter_layout``, or that record no model source, load too.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pandas as pd
import torch

from bpm.compiler.errors import BpmError

from .fit_source import import_source, rebuild
from .measurement import OrdinalMeasurement
from .measurement_affine import AffineMeasurement
from .measurement_continuous import ContinuousMeasurement
from .measurement_counts import CountPairMeasurement
from .predict import predictions, read_sequences
from .report import FORMAT, PROVENANCE, SPLIT_KEYS
from .result import FitResult

__all__ = ["build_measurement", "import_source", "load_fit", "predict", "read_saved"]

#: What model.pt must hold, and of which type, for a fit to load.
SAVED_KEYS = {
    "module_state": dict,
    "measurement_state": dict,
    "measurement_config": dict,
    "output": str,
    "summary": dict,
}


def load_fit(
    directory: str | Path, device: str = "cpu", *, model=None, trust: bool = False
) -> FitResult:
    """A saved fit (``bpm fit ... -o DIR``) as a FitResult, ready to predict.

    No code from ``directory`` runs: the module is rebuilt by the compiler from the model
    source model.pt records, checked against the stored hash (see
    :mod:`bpm.runtime.fit_source`). ``model``: the model file (or text) of a fit saved
    before the source was recorded, when the file summary.json names is not at hand.
    ``trust=True`` imports DIR/model.py as older versions did: only for a directory you
    wrote yourself. A damaged or foreign model.pt is one :class:`BpmError` line.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise BpmError(f"fit directory not found: {directory}")
    if not (directory / "model.pt").is_file():
        raise BpmError(f"{directory} is not a fit directory: model.pt is missing")
    saved = read_saved(directory / "model.pt", device)
    rebuilt = rebuild(directory, saved, model=model, trust=trust)
    where = f"{directory}/model.pt"
    try:
        module = rebuilt.cls().to(device)
        module.load_state_dict(saved["module_state"])
        measurement = build_measurement(saved["measurement_config"]).to(device)
        measurement.load_state_dict(saved["measurement_state"])
    except (RuntimeError, TypeError, ValueError, KeyError, AttributeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BpmError(
            f"{where} does not hold the parameters of model {rebuilt.name}: {first}"
        ) from None
    module.eval()
    measurement.eval()
    try:
        result = _result(saved, module, measurement, rebuilt)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise BpmError(
            f"{where}: its summary is damaged ({type(error).__name__}: {error})"
        ) from None
    return result


def read_saved(path: Path, device: str = "cpu") -> dict:
    """The dictionary a fit saved in ``path`` (model.pt), read with ``weights_only`` (no
    object in it can run code); anything else is one :class:`BpmError` line."""
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        raise BpmError(
            f"{path} holds objects other than tensors and plain values; refused, since "
            "unpickling them could run code (bpm never writes such a file)"
        ) from None
    except Exception as error:  # noqa: BLE001 -- torch raises many kinds on a bad file
        raise BpmError(f"{path} is not a model.pt bpm can read ({type(error).__name__})") from None
    if not isinstance(saved, dict):
        raise BpmError(f"{path} is not a model.pt written by bpm (not a dictionary)")
    if isinstance(saved.get("format", 1), int) and saved.get("format", 1) > FORMAT:
        raise BpmError(
            f"{path.parent} was written by a newer bpm (model.pt format {saved['format']}; "
            f"this one reads up to {FORMAT})"
        )
    missing = [key for key, kind in SAVED_KEYS.items() if not isinstance(saved.get(key), kind)]
    if missing:
        raise BpmError(f"{path} is not a complete bpm fit: {', '.join(missing)} missing or damaged")
    return saved


def _result(saved: dict, module, measurement, rebuilt) -> FitResult:
    info = saved["summary"]
    metrics = info["metrics"]
    result = FitResult(
        module=module,
        measurement=measurement,
        output=str(saved["output"]),
        metrics={
            split: metrics[split] if split in metrics else metrics[short]
            for short, split in SPLIT_KEYS
        },  # fmt: skip
        history=list(saved.get("history") or []),
        steps=int(info["steps"] if "steps" in info else info["epochs"]),  # format 1: "epochs"
        stages=list(info.get("stages", [])),
        convergence=dict(info.get("convergence", {})),
        notes=list(info.get("notes", [])),
        wall_seconds=float(info["wall_seconds"]),
        seed=info["seed"],
        data_summary=dict(info["data_validation"]),
        sizes={"training": info["n_train"], "validation": info["n_val"], "test": info["n_test"]},
        source=rebuilt.generated,
        model_path=str(info.get("model", "")),
        data_path=str(info.get("data", "")),
        profile=list(info.get("profile", [])),
        provenance={key: info[key] for key in PROVENANCE if key in info},
        phase_seconds=dict(info.get("phase_seconds", {})),
    )
    # the model source, so that saving this result again records it (source_record), and
    # how it was matched to the fit when the fit recorded none
    result.model_text = rebuilt.model_text
    result.load_note = rebuilt.how
    return result


def build_measurement(config: dict):
    """The measurement process a saved ``measurement_config`` describes: its ``kind``
    names the class (``affine``: :class:`AffineMeasurement`; ``continuous``:
    :class:`ContinuousMeasurement`; ``counts``: :class:`CountPairMeasurement`); configs
    without one were written for the flexible :class:`OrdinalMeasurement`."""
    config = dict(config)
    kind = config.pop("kind", "flexible")
    if kind == "affine":
        return AffineMeasurement(**config)
    if kind == "flexible":
        return OrdinalMeasurement(**config)
    if kind == "continuous":
        return ContinuousMeasurement(**config)
    if kind == "counts":
        return CountPairMeasurement(**config)
    raise BpmError(f"unknown measurement process kind {kind!r} in model.pt")


def predict(fit_dir, sequences, *, model=None, trust: bool = False) -> pd.DataFrame:
    """The output and state probabilities of ``sequences`` under the fit saved in
    ``fit_dir`` (a directory, or a FitResult). ``sequences``: a list, a Series, a
    DataFrame with an ``x``/``sequence``/``seq`` column, a single string, or a Path to a
    file of them (:func:`~bpm.runtime.predict.sequences_of`). ``model``, ``trust``: as
    for :func:`load_fit`."""
    if isinstance(fit_dir, (str, Path)):
        result = load_fit(fit_dir, model=model, trust=trust)
    else:
        result = fit_dir
    if isinstance(sequences, Path):
        sequences = read_sequences(str(sequences))
    return predictions(result, sequences)
