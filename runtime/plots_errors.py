"""Figures of the standard errors: each matrix as two heatmaps, its values and their
standard errors (``errors_<energy>.png``), and the scalar energies with error bars
(``errors_scalars.png``).

The matrices are drawn with the logos' sign: ``-ΔG`` in kcal/mol, positive (blue) binds
more strongly, so a letter tall in the logo is a blue cell here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import contract
from .plots_measured import save_figure
from .positions import set_ticks
from .site_tables import ReportTables
from .tables import matrix_frame

#: The colour of a cell whose standard error is not a number: the data leave the entry
#: free (``inf``) or the fit is not at an optimum (``nan``).
MISSING_COLOR = "#d9d9d9"


def plot_errors(result, tables: ReportTables, directory: Path, plt) -> list[Path]:
    """``errors_<energy>.png`` for each matrix with standard errors (:func:`error_heatmaps`)
    and ``errors_scalars.png``: the scalar energies, with those the data leave free marked
    "not identified" and, when the fit is not at an optimum, every bar left out and marked
    "not at an optimum"."""
    kT = result.kT_kcal_per_mol
    status = getattr(result.uncertainty, "status", "ok")
    paths = []
    for name, found in tables.errors.items():
        frame = matrix_frame(tables.terms[name])
        fig, _ = error_heatmaps(plt, -frame * kT, found.matrix * kT,
                                f"{name}: {tables.gauge_words(name, kT)}", status,
                                tables.numbering)  # fmt: skip
        paths.append(save_figure(fig, (), directory / f"errors_{name}.png"))
    scalars = plot_scalars(result, tables, plt)
    if scalars is not None:
        paths.append(save_figure(scalars, scalars.axes, directory / "errors_scalars.png"))
    return paths


def error_heatmaps(plt, values, se: np.ndarray, title: str, status: str = "ok", numbering=None):
    """Two heatmaps over positions (columns) and letters (rows): ``values`` (a frame,
    rows: 0-based positions, columns: letters; ``-ΔG`` kcal/mol, a scale symmetric about
    zero, blue up) above, the standard errors ``se`` (same shape) below, cells without one
    grey; positions labelled as ``numbering`` numbers them. Returns the figure and its
    two axes."""
    from matplotlib.colors import ListedColormap

    positions = np.asarray(values.index)
    letters = [str(c) for c in values.columns]
    width, size = len(positions), len(letters)
    shown = values.to_numpy(dtype=float).T  # [letters, positions]
    se = np.asarray(se, dtype=float).T
    panel = 0.2 * size + 0.9
    fig, (top, bottom) = plt.subplots(
        2, 1, sharex=True, figsize=(max(6.5, 0.22 * width + 2.5), 2 * panel + 0.8)
    )
    edges = np.arange(width + 1) - 0.5 + positions[0]
    rows = np.arange(size + 1) - 0.5
    limit = float(np.nanmax(np.abs(shown))) if np.isfinite(shown).any() else 1.0
    mesh = top.pcolormesh(edges, rows, shown, cmap="RdBu", vmin=-(limit or 1.0),
                          vmax=limit or 1.0)  # fmt: skip
    fig.colorbar(mesh, ax=top, label="−ΔG (kcal/mol)", pad=0.01)
    finite = np.isfinite(se)
    grey = np.where(finite, np.nan, 0.0)
    bottom.pcolormesh(edges, rows, np.ma.masked_invalid(grey), cmap=ListedColormap([MISSING_COLOR]))
    high = float(se[finite].max()) if finite.any() and se[finite].max() > 0 else 1.0
    spread = bottom.pcolormesh(edges, rows, np.ma.masked_invalid(np.where(finite, se, np.nan)),
                               cmap="Purples", vmin=0.0, vmax=high)  # fmt: skip
    fig.colorbar(spread, ax=bottom, label="standard error (kcal/mol)", pad=0.01)
    for ax in (top, bottom):
        ax.set_yticks(range(size), letters, fontsize=7 if size > 4 else 9)
        ax.invert_yaxis()
        ax.set_ylabel("letter")
    set_ticks(bottom, positions, numbering)
    top.set_title(f"{title}\n−ΔG as in the logo: blue (positive) lowers the energy", fontsize=9)
    if status == "ok":
        words = "± 1 standard error; grey: not identified or not at an optimum"
    else:
        words = f"no standard errors: {status}"
    bottom.set_title(words, fontsize=9)
    return fig, (top, bottom)


def plot_scalars(result, tables: ReportTables, plt):
    """The scalar energies (kcal/mol, site offsets in the report's gauge) with ±1 standard
    error bars, or None when the model has none."""
    kT = result.kT_kcal_per_mol
    errors = result.uncertainty.standard_errors
    reasons = getattr(result.uncertainty, "reasons", {})
    values = result.module.get_params()
    offsets = {f"{n}.offset": t.offset for n, t in tables.terms.items()}
    offset_errors = {f"{n}.offset": e.offset for n, e in tables.errors.items()}
    scalars = [
        n for n in sorted(errors) if n.split(".")[0] in contract.energy_names(result.module)
        and not isinstance(errors[n], np.ndarray) and values[n].ndim == 0
    ]  # fmt: skip
    if not scalars:
        return None
    fig, ax = plt.subplots(figsize=(6.0, 0.45 * len(scalars) + 1.2))
    for row, name in enumerate(scalars):
        value = offsets.get(name, float(values[name])) * kT  # offsets in the report's gauge
        se = offset_errors.get(name, float(errors[name])) * kT
        missing = not np.isfinite(se)
        ax.errorbar(value, row, xerr=None if missing else se, fmt="o", color="0.2", capsize=3)
        label = f"{value:+.2f} ± {se:.2f}"
        if missing:  # inf: a flat direction; nan: the fit is not at an optimum
            label = f"{value:+.2f}, " + (reasons.get(name) or missing_reason(se))
        ax.annotate(
            label, (value, row), xytext=(0, 6), textcoords="offset points", ha="center",
            fontsize=8,
        )  # fmt: skip
    ax.set_yticks(range(len(scalars)), scalars)
    ax.set_ylim(-0.6, len(scalars) - 0.2)
    ax.margins(x=0.15)
    ax.set_xlabel("ΔG, kcal/mol (± 1 standard error)")
    ax.set_title(f"scalar energies (site offsets in the {tables.gauge} gauge)", fontsize=9)
    return fig


def missing_reason(se: float) -> str:
    """Why a standard error is missing: ``inf`` a flat direction, ``nan`` no optimum."""
    return "not identified" if np.isinf(se) else "not at an optimum"
