"""What a fit leaves behind: summary.json, params/*.csv, model.py, model.pt, plots/*.png.

``write_report(result, DIR)`` writes them from a :class:`~bpm.runtime.result.FitResult`
(read back by :func:`bpm.runtime.load.load_fit`). This module knows the files, not the
fit: it imports neither :mod:`~bpm.runtime.fit` nor :mod:`~bpm.runtime.result`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bpm.compiler.errors import BpmError

from . import contract
from .tables import gauge_fixed, scalar_params

#: The version of model.pt's layout. 1: ``summary["epochs"]`` held the optimizer steps;
#: 2: ``summary["steps"]``, with ``stages`` and ``notes``. Both load.
FORMAT = 2
#: Splits as named in summary.json, and as named in a fit's metrics and sizes.
SPLIT_KEYS = (("train", "training"), ("val", "validation"), ("test", "test"))


def summary(result) -> dict:
    """The contents of summary.json."""
    module = result.module
    name = getattr(module, "name", "")
    return {
        "model": result.model_path or name,
        "model_name": name,
        "data": result.data_path or result.data_summary.get("source", ""),
        "output": result.output,
        "n_train": result.sizes["training"],
        "n_val": result.sizes["validation"],
        "n_test": result.sizes["test"],
        "steps": result.steps,
        "stages": list(result.stages),
        "notes": list(result.notes),
        "seed": result.seed,
        "wall_seconds": round(result.wall_seconds, 3),
        "kT_kcal_per_mol": contract.kT_kcal_per_mol(module),
        "metrics": {short: result.metrics[split] for short, split in SPLIT_KEYS},
        "params": scalar_params(module),
        "measurement_floor": result.measurement.floor(),
        "data_validation": result.data_summary,
        **({"profile": result.profile} if result.profile else {}),
        **uncertainty_summary(result),
    }


def uncertainty_summary(result) -> dict:
    """Standard errors of the scalars (natural units, energies also in kcal/mol) and the
    parameter combinations the data leave free; empty when no analysis was run."""
    found = result.uncertainty
    if found is None:
        return {}
    kT = result.kT_kcal_per_mol
    energies = contract.energy_names(result.module)
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
    (directory / "summary.json").write_text(json.dumps(info, indent=2, default=to_json) + "\n")
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


def to_json(value):
    """``value`` (a numpy scalar or array, a tuple) as something :mod:`json` writes."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.ndarray, tuple)):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
