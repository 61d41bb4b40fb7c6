"""What a fit leaves behind: summary.json, params/*.csv, model.py, model.pt, plots/*.png.

``write_report(result, DIR)`` writes them; ``load_fit(DIR)`` reads them back into a
:class:`~bpm.runtime.fit.FitResult` whose predictions equal the original's;
``predict(DIR, sequences)`` gives ``t`` and the state probabilities of new sequences.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bpm.compiler.errors import BpmError

from .measurement import OrdinalMeasurement

FORMAT = 1


def energy_names(module) -> set[str]:
    """Names of the module's energies (site energies and scalar energies), in kT."""
    names = set(getattr(module, "energy_names", ()) or ())
    names |= set(getattr(module, "site_energies", {}) or {})
    return names


def gauge_fixed(module) -> dict[str, tuple[pd.DataFrame, float]]:
    """Each additive site matrix in the zero-mean gauge, in kT, with its adjusted offset.

    Rows are positions in the full sequence (``start``..``stop-1``), columns letters.
    Shifting every letter at a position by c and the offset by -c changes nothing;
    here every position averages to zero and the offset absorbs the shifts.
    """
    params = module.get_params()
    out = {}
    for name, info in (getattr(module, "site_energies", {}) or {}).items():
        matrix = params[name].detach().double().cpu().numpy()
        offset = float(params.get(f"{name}.offset", torch.tensor(0.0)))
        mean = matrix.mean(axis=1, keepdims=True)
        index = pd.Index(range(info["start"], info["start"] + matrix.shape[0]), name="position")
        frame = pd.DataFrame(matrix - mean, index=index, columns=list(module.alphabet))
        out[name] = (frame, offset + float(mean.sum()))
    return out


def scalar_params(module) -> dict[str, float]:
    """Scalar parameters in natural units, energies also as ``<name>_kcal_per_mol``."""
    kT = float(getattr(module, "kT_kcal_per_mol", 0.616))
    energies = energy_names(module)
    fixed = gauge_fixed(module)
    out: dict[str, float] = {}
    for name, value in sorted(module.get_params().items()):
        if value.ndim != 0:
            continue
        base = name.split(".")[0]
        number = fixed[base][1] if base in fixed and name == f"{base}.offset" else float(value)
        out[name] = number
        if base in energies:
            out[f"{name}_kcal_per_mol"] = number * kT
    return out


def summary(result) -> dict:
    """The contents of summary.json."""
    module = result.module
    return {
        "model": result.model_path or getattr(module, "name", ""),
        "model_name": getattr(module, "name", ""),
        "data": result.data_path or result.data_summary.get("source", ""),
        "output": result.output,
        "n_train": result.sizes["training"],
        "n_val": result.sizes["validation"],
        "n_test": result.sizes["test"],
        "epochs": result.epochs,
        "seed": result.seed,
        "wall_seconds": round(result.wall_seconds, 3),
        "kT_kcal_per_mol": float(getattr(module, "kT_kcal_per_mol", 0.616)),
        "metrics": {
            short: result.metrics[split]
            for short, split in (("train", "training"), ("val", "validation"), ("test", "test"))
        },
        "params": scalar_params(module),
        "measurement_floor": result.measurement.floor(),
        "data_validation": result.data_summary,
        **({"profile": result.profile} if getattr(result, "profile", None) else {}),
        **uncertainty_summary(result),
    }


def uncertainty_summary(result) -> dict:
    """Standard errors of the scalars (natural units, energies also in kcal/mol) and the
    parameter combinations the data leave free; empty when no analysis was run."""
    found = getattr(result, "uncertainty", None)
    if found is None:
        return {}
    kT = result.kT_kcal_per_mol
    energies = energy_names(result.module)
    errors = {}
    for name, se in sorted(found.standard_errors.items()):
        if isinstance(se, np.ndarray):
            continue
        value = float(se) if np.isfinite(se) else None  # None: not identified
        errors[name] = value
        if name.split(".")[0] in energies:
            errors[f"{name}_kcal_per_mol"] = None if value is None else value * kT
    return {
        "standard_errors": errors,
        "unidentified": list(found.unidentified),
        "uncertainty_notes": list(found.notes),
    }


def write_report(result, directory: Path, plots: bool = True) -> Path:
    """Write every output of a fit into ``directory`` (created if needed)."""
    directory = Path(directory)
    try:
        (directory / "params").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BpmError(f"cannot create {directory}: {error.strerror or error}") from None
    info = summary(result)
    (directory / "summary.json").write_text(json.dumps(info, indent=2, default=_json) + "\n")
    kT = info["kT_kcal_per_mol"]
    for name, (frame, _) in gauge_fixed(result.module).items():
        (frame * kT).to_csv(directory / "params" / f"{name}.csv", float_format="%.6f")
        frame.to_csv(directory / "params" / f"{name}_kT.csv", float_format="%.6f")
        se = getattr(result.uncertainty, "standard_errors", {}).get(name)
        if isinstance(se, np.ndarray):
            errors = pd.DataFrame(se, index=frame.index, columns=frame.columns)
            (errors * kT).to_csv(directory / "params" / f"{name}_se.csv", float_format="%.6f")
            errors.to_csv(directory / "params" / f"{name}_se_kT.csv", float_format="%.6f")
    (directory / "model.py").write_text(result.source)
    torch.save(
        {
            "format": FORMAT,
            "module_state": {k: v.cpu() for k, v in result.module.state_dict().items()},
            "measurement_state": {k: v.cpu() for k, v in result.measurement.state_dict().items()},
            "measurement_config": result.measurement.config(),
            "output": result.output,
            "summary": info,
            "history": result.history,
            "bin_names": list(result.dataset.bin_names) if result.dataset is not None else None,
        },
        directory / "model.pt",
    )
    if plots:
        from .plots import plot_all

        plot_all(result, directory / "plots")
    return directory


def _json(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.ndarray, tuple)):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _import_source(path: Path) -> type:
    """The ``Model`` class of a generated module file, imported under a private name."""
    text = path.read_text()
    import hashlib

    name = "bpm_fit_" + hashlib.sha256(text.encode()).hexdigest()[:20]
    if name in sys.modules:
        return sys.modules[name].Model
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.Model


def load_fit(directory: str | Path, device: str = "cpu"):
    """A saved fit (``bpm fit ... -o DIR``) as a FitResult, ready to predict."""
    from .fit import FitResult

    directory = Path(directory)
    for required in ("model.py", "model.pt"):
        if not (directory / required).exists():
            raise BpmError(f"{directory} is not a fit directory: {required} is missing")
    cls = _import_source(directory / "model.py")
    saved = torch.load(directory / "model.pt", map_location=device, weights_only=True)
    module = cls().to(device)
    module.load_state_dict(saved["module_state"])
    measurement = OrdinalMeasurement(**saved["measurement_config"]).to(device)
    measurement.load_state_dict(saved["measurement_state"])
    module.eval()
    measurement.eval()
    info = saved["summary"]
    return FitResult(
        module=module,
        measurement=measurement,
        output=saved["output"],
        metrics={
            split: info["metrics"][short]
            for short, split in (("train", "training"), ("val", "validation"), ("test", "test"))
        },
        history=saved["history"],
        epochs=info["epochs"],
        wall_seconds=info["wall_seconds"],
        seed=info["seed"],
        data_summary=info["data_validation"],
        sizes={"training": info["n_train"], "validation": info["n_val"], "test": info["n_test"]},
        source=(directory / "model.py").read_text(),
        model_path=info["model"],
        data_path=info["data"],
    )


def predictions(result, sequences) -> pd.DataFrame:
    """One row per sequence: ``t``, ``P(<state>)`` for every state, the most likely bin."""
    from .fit import _as_codes, select_output

    seqs = [sequences] if isinstance(sequences, str) else list(sequences)
    if not seqs:
        raise BpmError("no sequences to predict")
    module = result.module
    x = _as_codes(module, seqs)
    with torch.no_grad():
        t = select_output(module(x), result.output)
        P = module.P(x)
        bins = result.measurement(t)
    frame = pd.DataFrame({"sequence": seqs, result.output: t.double().cpu().numpy()})
    for k, state in enumerate(module.state_names):
        frame[f"P({state})"] = P[:, k].double().cpu().numpy()
    frame["most_likely_bin"] = bins.argmax(1).cpu().numpy()
    return frame


def read_sequences(arg: str) -> list[str]:
    """Sequences from a file (one a line, or a table with an ``x``/``sequence`` column) or
    the argument itself (comma- or whitespace-separated)."""
    path = Path(arg)
    if path.exists():
        if path.suffix.lower() in (".csv", ".tsv", ".parquet", ".pq", ".gz"):
            from .data import read_table

            table = read_table(path)
            for column in ("x", "sequence", "seq"):
                if column in table.columns:
                    return table[column].astype(str).tolist()
            raise BpmError(f"{path} has no column named x, sequence or seq")
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [s for s in arg.replace(",", " ").split() if s]


def predict(fit_dir, sequences) -> pd.DataFrame:
    """``t`` and state probabilities of ``sequences`` under the fit saved in ``fit_dir``."""
    result = load_fit(fit_dir) if isinstance(fit_dir, (str, Path)) else fit_dir
    if isinstance(sequences, (str, Path)) and not isinstance(sequences, str):
        sequences = read_sequences(str(sequences))
    return predictions(result, sequences)
