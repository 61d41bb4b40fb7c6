"""What a fit leaves behind: summary.json, params/*.csv, model.py, model.pt, plots/*.png
and report.html (:mod:`bpm.runtime.report_html`, written from the other files).

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

from . import contract
from .bootstrap_report import bootstrap_frames, bootstrap_summary, plot_bootstrap
from .fit_directory import replacing
from .fit_source import RECORD_KEY, source_record
from .measurement_kinds import kind_of
from .positions import numbered, numbering_summary
from .progress import phase
from .report_html import write_html
from .site_tables import ReportTables, report_tables
from .tables import matrix_frame, pairs_frame, scalar_params

#: The version of model.pt's layout. 1: ``summary["epochs"]`` held the optimizer steps;
#: 2: ``summary["steps"]``, with ``stages`` and ``notes``. Both load.
FORMAT = 2
#: The splits, as summary.json's ``metrics`` and ``FitResult.metrics`` both name them
#: (the data's split labels). ``SPLIT_KEYS`` pairs the short names that summary.json
#: used before 2026-12 (``train``, ``val``) with them: saved fits with either load.
SPLITS = ("training", "validation", "test")
SPLIT_KEYS = (("train", "training"), ("val", "validation"), ("test", "test"))
#: summary.json's record of how the fit was made (:func:`provenance_summary`), in the
#: order written; a loaded fit keeps it, so saving it again does not lose it.
PROVENANCE = (
    "bpm_version", "torch_version", "python_version", "data_sha256",
    "execution_path", "options", "options_given",
)  # fmt: skip


def summary(result, gauge: str = "zero-mean", wild_type: str | None = None, tables=None) -> dict:
    """The contents of summary.json, site offsets in ``gauge`` (``"zero-mean"`` or
    ``"wild-type"``; ``wild_type`` a sequence, default the library consensus; see
    :func:`bpm.runtime.site_tables.report_tables`). ``tables``: those already made."""
    module = result.module
    name = getattr(module, "name", "")
    tables = tables or report_tables(result, gauge, wild_type)
    return {
        "model": result.model_path or name,
        "model_name": name,
        "data": result.data_path or result.data_summary.get("source", ""),
        **provenance_summary(result),
        "output": result.output,
        "n_train": result.sizes["training"],
        "n_val": result.sizes["validation"],
        "n_test": result.sizes["test"],
        "steps": result.steps,
        "stages": list(result.stages),
        "notes": list(result.notes),
        "seed": result.seed,
        "wall_seconds": round(result.wall_seconds, 3),
        **phase_summary(result),
        "kT_kcal_per_mol": contract.kT_kcal_per_mol(module),
        "metrics": {split: result.metrics[split] for split in SPLITS},
        "gauge": tables.gauge,
        "params": scalar_params(module, tables.gauge, tables.wild_type),
        **numbering_summary(tables.numbering),
        "sites": sites_summary(tables, contract.kT_kcal_per_mol(module)),
        **wild_type_summary(result, tables),
        "measurement_kind": kind_of(result.measurement),
        "measurement_floor": result.measurement.floor(),
        "measurement": measurement_summary(result.measurement),
        "data_validation": result.data_summary,
        **({"profile": result.profile} if result.profile else {}),
        **({"optima": result.optima} if getattr(result, "optima", None) else {}),
        **({"convergence": result.convergence} if getattr(result, "convergence", None) else {}),
        **identifiability_summary(result),
        **uncertainty_summary(result, tables),
        **bootstrap_summary(result, tables),
    }


def provenance_summary(result) -> dict:
    """How the fit was made (:attr:`~bpm.runtime.result.FitResult.provenance`: the
    versions, every option, the data file's sha256); for a result without one, at least
    the version of bpm writing it."""
    from bpm.compiler import __version__

    return dict(getattr(result, "provenance", None) or {"bpm_version": __version__})


def phase_summary(result) -> dict:
    """``{"phase_seconds": ...}``: how long each phase of the fit took, or empty."""
    found = getattr(result, "phase_seconds", None)
    return {"phase_seconds": {k: round(v, 3) for k, v in found.items()}} if found else {}


def identifiability_summary(result) -> dict:
    """``{"identifiability": ...}``: the fit's profile-likelihood intervals
    (:mod:`bpm.runtime.identifiability`), or empty when none were computed."""
    found = getattr(result, "identifiability", None)
    return {"identifiability": found} if found else {}


def sites_summary(tables: ReportTables, kT: float) -> dict:
    """Each site energy: kind, positions (0-based ``start``, ``stop``; with a numbering
    also its first and last letters' numbers), the strand the model reads it on, its
    offset in the report's gauge and, when the wild type is known, the wild type's energy."""
    out = {}
    for name, terms in tables.terms.items():
        stop = terms.start + len(terms.matrix)
        numbers = {}
        if tables.numbering is not None:
            numbers = {"numbered_first": tables.numbering.number(terms.start),
                       "numbered_last": tables.numbering.number(stop - 1)}  # fmt: skip
        entry = {
            "kind": terms.kind,
            "start": terms.start,
            "stop": stop,
            **numbers,
            "strand": "bottom" if terms.revcomp else "top",
            "offset": terms.offset,
            "offset_kcal_per_mol": terms.offset * kT,
        }
        if name in tables.wild_type_energies:
            energy = tables.wild_type_energies[name]
            entry.update(wild_type_energy=energy, wild_type_energy_kcal_per_mol=energy * kT)
        out[name] = entry
    return out


def wild_type_summary(result, tables: ReportTables) -> dict:
    """``{"wild_type": {"sequence", "source", "energies", "energies_kcal_per_mol"}}`` when
    the wild type is known (given, or the consensus of the fit's library), else empty."""
    if tables.wild_type is None:
        return {}
    kT = contract.kT_kcal_per_mol(result.module)
    letters = str(result.module.alphabet)
    energies = tables.wild_type_energies
    return {
        "wild_type": {
            "sequence": "".join(letters[c] for c in tables.wild_type),
            "source": tables.wild_type_source,
            "energies": dict(energies),
            "energies_kcal_per_mol": {k: v * kT for k, v in energies.items()},
        }
    }


def uncertainty_summary(result, tables: ReportTables | None = None) -> dict:
    """Standard errors of the scalars (natural units, energies also in kcal/mol; site
    offsets in the report's gauge), whether the fit is at an optimum, each parameter's
    reason for a null, and the parameter combinations the data leave free; empty when no
    analysis was run.

    ``standard_errors`` holds a number only where the analysis point is an optimum with
    positive curvature (``standard_error_status.status == "ok"``); ``null`` otherwise,
    and ``standard_error_reasons`` says which: ``"not identified"`` (a flat direction)
    or ``"not at an optimum"`` (the gradient is too large, or a saddle).
    """
    found = result.uncertainty
    if found is None:
        return {}
    kT = result.kT_kcal_per_mol
    energies = contract.energy_names(result.module)
    offsets = {f"{n}.offset": e.offset for n, e in (tables.errors if tables else {}).items()}
    ok = getattr(found, "status", "ok") == "ok"
    errors = {}
    for name, se in sorted(found.standard_errors.items()):
        if isinstance(se, np.ndarray):
            continue
        se = offsets.get(name, se)
        value = float(se) if ok and np.isfinite(se) else None
        errors[name] = value
        if name.split(".")[0] in energies:
            errors[f"{name}_kcal_per_mol"] = None if value is None else value * kT
    status = found.status_summary() if hasattr(found, "status_summary") else {"status": "ok"}
    return {
        "standard_errors": errors,
        "standard_error_status": status,
        "standard_error_reasons": dict(getattr(found, "reasons", {})),
        "unidentified": list(found.unidentified),
        "uncertainty_notes": list(found.notes),
    }


def write_report(
    result,
    directory: Path,
    plots: bool = True,
    gauge: str = "zero-mean",
    wild_type: str | None = None,
    figure_formats: tuple[str, ...] = ("png",),
    progress: bool = False,
) -> Path:
    """Write every output of a fit into ``directory``, which appears complete or not at
    all (:func:`bpm.runtime.fit_directory.replacing`: written beside, renamed into place;
    an earlier fit there is replaced whole).

    Every table, offset and figure is in ``gauge``: ``"zero-mean"`` (each position's
    letters average zero) or ``"wild-type"`` (each wild-type letter is zero, the offset
    is the wild type's energy); ``wild_type`` is a full-length sequence, by default the
    consensus of the fit's library. summary.json names the gauge. ``figure_formats``:
    every figure is a PNG, and also a PDF beside it when it holds ``"pdf"``.
    ``progress``: name each phase (writing, plotting, the page) on stderr as it starts.
    """
    directory = Path(directory)
    with replacing(directory) as folder:
        phase(progress, "writing", f"{directory}/ (summary.json, params/, model.py, model.pt)")
        write_files(result, folder, plots, gauge, wild_type, figure_formats, progress)
        phase(progress, "report", f"{directory}/report.html")
        write_html(folder, name=directory)  # read back from the files, as bpm report does
    return directory


def write_files(
    result,
    directory: Path,
    plots: bool,
    gauge: str,
    wild_type: str | None,
    figure_formats: tuple[str, ...] = ("png",),
    progress: bool = False,
) -> None:
    """Every file of :func:`write_report` into the (new, empty) ``directory``."""
    (directory / "params").mkdir()
    tables = report_tables(result, gauge, wild_type)
    info = summary(result, tables=tables)
    (directory / "summary.json").write_text(summary_text(info))
    write_tables(tables, directory / "params", info["kT_kcal_per_mol"])
    for stem, frame, index in bootstrap_frames(result, tables):
        _write_both(frame, directory / "params" / stem, info["kT_kcal_per_mol"], index=index,
                    numbering=tables.numbering)  # fmt: skip
    (directory / "model.py").write_text(result.source)
    record = source_record(result)  # what load_fit rebuilds the module from (no code run)
    if record is not None:
        (directory / "model.bpm").write_text(record["text"])  # the same source, for people
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
            RECORD_KEY: record,
        },
        directory / "model.pt",
    )
    if plots:
        from .plots import plot_all

        phase(progress, "plotting", f"every figure into plots/ ({', '.join(figure_formats)})")
        plot_all(result, directory / "plots", tables=tables, formats=figure_formats)
        plot_bootstrap(result, tables, directory / "plots" / "bootstrap", figure_formats)


#: Digits written: float32 energies round-trip, and a site's energy recomputed from the
#: CSVs of a 40-position site is within 1e-6 kT of the module's.
FLOAT_FORMAT = "%.9g"


def write_tables(tables: ReportTables, params: Path, kT: float) -> None:
    """params/: for each site ``G``, ``G.csv`` (kcal/mol) and ``G_kT.csv``: rows
    ``position`` in the full sequence (0-based), one column per top-strand letter; with
    pair terms ``G_pairs.csv`` / ``G_pairs_kT.csv`` in long format (``position_i,
    position_j, letter_i, letter_j, energy``); with standard errors ``G_se*.csv`` /
    ``G_pairs_se*.csv`` alike; and ``sites.csv``, one row per site with its offset in the
    same gauge. A model file that numbers its positions adds ``numbered_position``
    (``numbered_position_i``, ``_j``) as the last columns (:mod:`bpm.runtime.positions`)."""
    rows = []
    n = tables.numbering
    for name, terms in tables.terms.items():
        frame = matrix_frame(terms)
        _write_both(frame, params / name, kT, numbering=n)
        if terms.pairs is not None:
            _write_both(pairs_frame(terms), params / f"{name}_pairs", kT, index=False, numbering=n)
        found = tables.errors.get(name)
        if found is not None:
            errors = pd.DataFrame(found.matrix, index=frame.index, columns=frame.columns)
            _write_both(errors, params / f"{name}_se", kT, numbering=n)
            if found.pairs is not None:
                long = pairs_frame(terms, values=found.pairs)
                _write_both(long, params / f"{name}_pairs_se", kT, index=False, numbering=n)
        rows.append(
            {
                "energy": name,
                "kind": terms.kind,
                "start": terms.start,
                "stop": terms.start + len(terms.matrix),
                "strand": "bottom" if terms.revcomp else "top",
                "gauge": tables.gauge,
                "offset_kT": terms.offset,
                "offset_kcal_per_mol": terms.offset * kT,
                "wild_type_energy_kT": tables.wild_type_energies.get(name, np.nan),
            }
        )
        if n is not None:  # the site's first and last letters as the model file numbers them
            last = terms.start + len(terms.matrix) - 1
            rows[-1].update(numbered_first=n.number(terms.start), numbered_last=n.number(last))
    if rows:
        pd.DataFrame(rows).to_csv(params / "sites.csv", index=False, float_format=FLOAT_FORMAT)


def _write_both(
    frame: pd.DataFrame, stem: Path, kT: float, index: bool = True, numbering=None
) -> None:
    """``stem.csv`` in kcal/mol and ``stem_kT.csv`` in kT (the ``energy`` column of a long
    table, every column of a wide one), with ``numbering``'s position columns appended."""
    scaled = frame.copy()
    if "energy" in scaled.columns:
        scaled["energy"] = scaled["energy"] * kT
    else:
        scaled = scaled * kT
    numbered(scaled, numbering).to_csv(f"{stem}.csv", index=index, float_format=FLOAT_FORMAT)
    numbered(frame, numbering).to_csv(f"{stem}_kT.csv", index=index, float_format=FLOAT_FORMAT)


def summary_text(info: dict) -> str:
    """summary.json's text: valid JSON, a number that is not finite (the NLL of an empty
    split) written as ``null``.

    >>> print(summary_text({"nll": float("nan"), "n": np.int64(3)}), end="")
    {
      "nll": null,
      "n": 3
    }
    """
    return json.dumps(finite(info), indent=2, default=to_json, allow_nan=False) + "\n"


def finite(value):
    """``value`` with every float that is not finite replaced by None (dicts, lists,
    tuples and numpy values walked through)."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [finite(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


def to_json(value):
    """``value`` (a numpy scalar or array, a tuple) as something :mod:`json` writes."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.ndarray, tuple)):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def measurement_summary(measurement) -> dict:
    """The fitted measurement process in words and natural units, for summary.json."""
    if hasattr(measurement, "physical"):
        return measurement.physical()
    return {"link": "flexible", "floor": measurement.floor(), "hidden": measurement.hidden}
