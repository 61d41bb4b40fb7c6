"""A bootstrap in the report: standard errors and percentile intervals in the report's gauge.

Every refit of :class:`~bpm.runtime.bootstrap.Bootstrap` is put in the report's gauge
first (:func:`bpm.runtime.tables.fix_gauge`, the same tables params/*.csv holds), then
summarized, so a wild-type-gauge entry's interval is the interval of that entry, not
one propagated from another gauge. summary.json gets a ``bootstrap`` block
(:func:`bootstrap_summary`), params/ gets ``<G>_bootstrap_se``, ``_low`` and ``_high``
tables beside ``<G>.csv`` (:func:`bootstrap_frames`, written by the report's own
writer), and plots/bootstrap/ the error figures of ``--uncertainty``
(:func:`plot_bootstrap`, drawn by :func:`bpm.runtime.plots_errors.plot_errors`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from . import contract
from .site_tables import ReportTables, SiteErrors
from .tables import fix_gauge, matrix_frame, pairs_frame, top_strand_terms

#: The central interval reported: 95%, from the 2.5th to the 97.5th percentile.
LEVEL = 0.95
#: The quantities of a site table: the offset, the matrix, the pair terms.
PARTS = ("offset", "matrix", "pairs")


@dataclass(frozen=True)
class SiteSpread:
    """One site's bootstrap in the report's gauge: ``se``, ``low`` and ``high`` each a
    :class:`~bpm.runtime.site_tables.SiteErrors` (offset, matrix, pairs; kT)."""

    se: SiteErrors
    low: SiteErrors
    high: SiteErrors


def site_spreads(result, tables: ReportTables) -> dict[str, SiteSpread]:
    """Every site table's bootstrap standard errors and intervals in ``tables``' gauge."""
    found = result.bootstrap
    gauged = [
        {
            name: fix_gauge(terms, tables.gauge, tables.wild_type)
            for name, terms in top_strand_terms(result.module, replicate).items()
        }
        for replicate in found.replicates
    ]
    out = {}
    for name in tables.terms:
        if not gauged:
            continue
        parts = {
            part: np.stack([np.asarray(getattr(g[name], part), dtype=float) for g in gauged])
            for part in PARTS
            if getattr(gauged[0][name], part) is not None
        }
        spread = {}
        for label in ("se", "low", "high"):
            values = {}
            for part, stack in parts.items():
                if label == "se":
                    values[part] = found.standard_error(stack)
                else:
                    values[part] = found.interval(stack)[0 if label == "low" else 1]
            spread[label] = SiteErrors(
                float(values["offset"]), values["matrix"], values.get("pairs")
            )
        out[name] = SiteSpread(**spread)
    return out


def scalar_spreads(result, tables: ReportTables) -> dict[str, dict]:
    """Each learned scalar's ``estimate``, ``se``, ``low`` and ``high`` (natural units;
    site offsets in the report's gauge), energies also ``_kcal_per_mol``."""
    found = result.bootstrap
    module = result.module
    kT = contract.kT_kcal_per_mol(module)
    energies = contract.energy_names(module)
    params = module.get_params()
    learned = set(contract.learned_names(module))
    sites = site_spreads(result, tables) if found.replicates else {}
    out = {}
    for name, value in sorted(params.items()):
        if value.ndim != 0 or name not in learned:
            continue
        base = name.split(".")[0]
        if base in tables.terms and name == f"{base}.offset":
            estimate = tables.terms[base].offset
            if base not in sites:
                continue
            s = sites[base]
            entry = {"se": s.se.offset, "low": s.low.offset, "high": s.high.offset}
        else:
            estimate = float(value)
            values = found.values(name) if found.replicates else np.zeros(0)
            low, high = found.interval(values)
            entry = {"se": found.standard_error(values), "low": low, "high": high}
        entry = {"estimate": estimate, **{k: float(v) for k, v in entry.items()}}
        if base in energies:
            entry.update({f"{k}_kcal_per_mol": v * kT for k, v in list(entry.items())})
        out[name] = {k: (v if np.isfinite(v) else None) for k, v in entry.items()}
    return out


def bootstrap_summary(result, tables: ReportTables) -> dict:
    """``{"bootstrap": {...}}`` for summary.json (empty without a bootstrap): the refits
    asked for and done, the gauge, :data:`LEVEL`, every learned
    scalar's spread (:func:`scalar_spreads`), each site's median entry standard error,
    and the notes."""
    found = getattr(result, "bootstrap", None)
    if found is None:
        return {}
    kT = contract.kT_kcal_per_mol(result.module)
    sites = site_spreads(result, tables)
    return {
        "bootstrap": {
            "replicates": len(found.replicates),
            "requested": found.requested,
            "failed": list(found.failed),
            "converged": int(sum(found.converged)),
            "seed": found.seed,
            "seconds": round(found.seconds, 3),
            "level": LEVEL,
            "gauge": tables.gauge,
            "params": scalar_spreads(result, tables),
            "sites": {
                name: {
                    "median_se": float(np.nanmedian(s.se.matrix)),
                    "median_se_kcal_per_mol": float(np.nanmedian(s.se.matrix)) * kT,
                }
                for name, s in sites.items()
            },
            "tables": "params/<site>_bootstrap_se.csv, _low.csv, _high.csv (and _kT.csv)",
            "notes": list(found.notes),
        }
    }


def bootstrap_frames(result, tables: ReportTables) -> list[tuple[str, pd.DataFrame, bool]]:
    """``(stem, frame, index)`` for each table params/ gets: ``<G>_bootstrap_se``,
    ``_low``, ``_high`` in kT, laid out as ``<G>_kT.csv`` (and ``<G>_pairs_bootstrap_*``
    long tables with pair terms); ``index`` says whether the frame's index is written."""
    if getattr(result, "bootstrap", None) is None:
        return []
    out = []
    for name, spread in site_spreads(result, tables).items():
        terms = tables.terms[name]
        frame = matrix_frame(terms)
        for label in ("se", "low", "high"):
            part = getattr(spread, label)
            table = pd.DataFrame(part.matrix, index=frame.index, columns=frame.columns)
            out.append((f"{name}_bootstrap_{label}", table, True))
            if part.pairs is not None:
                long = pairs_frame(terms, values=part.pairs)
                out.append((f"{name}_pairs_bootstrap_{label}", long, False))
    return out


def plot_bootstrap(
    result, tables: ReportTables, directory: Path, formats: tuple[str, ...] = ("png",)
) -> list[Path]:
    """plots/bootstrap/: the figures of :func:`bpm.runtime.plots.plot_errors` with the
    bootstrap standard errors (PNGs, and PDFs beside them when ``formats`` holds ``"pdf"``)."""
    from .plots import pyplot
    from .plots_errors import plot_errors
    from .plots_measured import figure_formats

    found = getattr(result, "bootstrap", None)
    if found is None or len(found.replicates) < 2:
        return []
    sites = site_spreads(result, tables)
    scalars = scalar_spreads(result, tables)
    errors = {
        name: (np.nan if entry["se"] is None else entry["se"]) for name, entry in scalars.items()
    }
    errors.update({name: s.se.matrix for name, s in sites.items()})
    view = replace(result, uncertainty=BootstrapErrors(errors))
    shown = replace(tables, errors={name: s.se for name, s in sites.items()})
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    try:
        with figure_formats(formats):
            return plot_errors(view, shown, directory, plt)
    finally:
        plt.close("all")


@dataclass(frozen=True)
class BootstrapErrors:
    """The bootstrap's standard errors in the shape the error figures read
    (``standard_errors``, ``reasons``, ``status``)."""

    standard_errors: dict
    reasons: dict = None
    status: str = "ok"

    def __post_init__(self):
        object.__setattr__(self, "reasons", dict(self.reasons or {}))
