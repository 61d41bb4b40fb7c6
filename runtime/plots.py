"""Figures of a fit: energy logos, the measurement process, training history, test data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import contract
from .measurement_kinds import kind_of
from .plots_measured import plot_measured, save_figure
from .site_tables import ReportTables, report_tables
from .tables import matrix_frame


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed), imported on first use."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_all(
    result, directory: Path, tables: ReportTables | None = None, gauge: str = "zero-mean"
) -> list[Path]:
    """Write every figure of ``result`` into ``directory``; returns the paths.

    ``tables``: the site tables to draw (:func:`~bpm.runtime.site_tables.report_tables`),
    by default made in ``gauge`` (the library consensus as wild type).
    """
    from .plots_pairwise import plot_pairs

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tables = tables or report_tables(result, gauge)
    plt = pyplot()
    paths = []
    try:
        paths += plot_logos(result, tables, directory, plt)
        paths += plot_pairs(result, tables, directory, plt)
        paths.append(plot_history(result, directory / "history.png", plt))
        if kind_of(result.measurement) != "sortseq":
            if result.dataset is not None:
                t, obs = _test_t(result)
                path = directory / "test_prediction.png"
                paths.append(plot_measured(result, t, obs, path, plt))
        elif result.dataset is not None or t_range(result) is not None:
            paths.append(plot_measurement(result, directory / "measurement.png", plt))
        if result.dataset is not None and kind_of(result.measurement) == "sortseq":
            paths.append(plot_test(result, directory / "test_t_by_bin.png", plt))
        if result.uncertainty is not None:
            paths += plot_errors(result, tables, directory, plt)
    finally:
        plt.close("all")
    return paths


def plot_logos(result, tables: ReportTables, directory: Path, plt) -> list[Path]:
    """One sequence logo per site energy (its additive part, read on the top strand):
    letter height = -ΔG (kcal/mol), up = binds better."""
    kT = result.kT_kcal_per_mol
    paths = []
    for name, terms in tables.terms.items():
        frame = matrix_frame(terms)
        width = len(frame)
        fig, ax = plt.subplots(figsize=(max(6.5, 0.28 * width + 1.5), 2.9))
        draw_logo(ax, -frame * kT)
        ax.axhline(0, color="0.3", lw=0.6)
        ax.set_ylabel("−ΔG (kcal/mol)")
        ax.set_xlabel("position in sequence (0-based)")
        step = 5 if width > 20 else 1
        ticks = [p for p in frame.index if p % step == 0]
        ax.set_xticks(ticks)
        strand = "bottom-strand site, read on the top strand; " if terms.revcomp else ""
        ax.set_title(
            f"{name}: {tables.gauge_words(name, kT)}\n{strand}letters up bind more strongly",
            fontsize=9,
        )
        paths.append(save_figure(fig, (ax,), directory / f"logo_{name}.png"))
    return paths


def plot_errors(result, tables: ReportTables, directory: Path, plt) -> list[Path]:
    """Fitted values with ±1 standard error bars: each matrix entry, and the scalar energies.

    ``errors_<energy>.png``: one point per letter at each position (the report's gauge,
    kcal/mol), so a reader sees which positions the data pin down; ``errors_scalars.png``:
    the scalar energies, with those the data leave free marked "not identified" and, when
    the fit is not at an optimum, every bar left out and marked "not at an optimum".
    """
    kT = result.kT_kcal_per_mol
    errors = result.uncertainty.standard_errors
    reasons = getattr(result.uncertainty, "reasons", {})
    status = getattr(result.uncertainty, "status", "ok")
    paths = []
    for name, found in tables.errors.items():
        frame = matrix_frame(tables.terms[name])
        se = found.matrix
        width = len(frame)
        fig, ax = plt.subplots(figsize=(max(6.0, 0.28 * width + 1.5), 2.8))
        letters = list(frame.columns)
        for k, letter in enumerate(letters):
            shift = (k - (len(letters) - 1) / 2) * 0.18
            ax.errorbar(
                np.asarray(frame.index) + shift,
                frame[letter].to_numpy() * kT,
                yerr=np.where(np.isfinite(se[:, k]), se[:, k], np.nan) * kT,
                fmt="o",
                ms=2.5,
                lw=0.8,
                color=_COLORS.get(letter, "0.3"),
                label=letter,
            )
        ax.axhline(0, color="0.3", lw=0.6)
        ax.set_xlabel("position in sequence (0-based)")
        ax.set_ylabel("ΔG (kcal/mol)")
        ax.legend(ncol=len(letters), fontsize=7, frameon=False, loc="upper right")
        bars = "± 1 standard error" if status == "ok" else f"no standard errors: {status}"
        ax.set_title(f"{name}: fitted entries {bars} ({tables.gauge_words(name, kT)})", fontsize=9)
        paths.append(save_figure(fig, (ax,), directory / f"errors_{name}.png"))
    values = result.module.get_params()
    offsets = {f"{n}.offset": t.offset for n, t in tables.terms.items()}
    offset_errors = {f"{n}.offset": e.offset for n, e in tables.errors.items()}
    scalars = [
        n for n in sorted(errors) if n.split(".")[0] in contract.energy_names(result.module)
        and not isinstance(errors[n], np.ndarray) and values[n].ndim == 0
    ]  # fmt: skip
    if scalars:
        fig, ax = plt.subplots(figsize=(6.0, 0.45 * len(scalars) + 1.2))
        for row, name in enumerate(scalars):
            value = offsets.get(name, float(values[name])) * kT  # offsets in the report's gauge
            se = offset_errors.get(name, float(errors[name])) * kT
            missing = not np.isfinite(se)
            ax.errorbar(value, row, xerr=None if missing else se, fmt="o", color="0.2", capsize=3)
            label = f"{value:+.2f} ± {se:.2f}"
            if missing:  # inf: a flat direction; nan: the fit is not at an optimum
                label = f"{value:+.2f}, " + (reasons.get(name) or _reason(se))
            ax.annotate(
                label, (value, row), xytext=(0, 6), textcoords="offset points", ha="center",
                fontsize=8,
            )  # fmt: skip
        ax.set_yticks(range(len(scalars)), scalars)
        ax.set_ylim(-0.6, len(scalars) - 0.2)
        ax.margins(x=0.15)
        ax.set_xlabel("kcal/mol (± 1 standard error)")
        ax.set_title(f"scalar energies (site offsets in the {tables.gauge} gauge)", fontsize=9)
        paths.append(save_figure(fig, (ax,), directory / "errors_scalars.png"))
    return paths


def _reason(se: float) -> str:
    """Why a standard error is missing: ``inf`` a flat direction, ``nan`` no optimum."""
    return "not identified" if np.isinf(se) else "not at an optimum"


_COLORS = {"A": "#109648", "C": "#255C99", "G": "#F7B32B", "T": "#D62839", "U": "#D62839"}
_GLYPHS: dict = {}


def _glyph(letter: str):
    """The outline of ``letter`` (bold sans) and its extents, made once per letter."""
    if letter not in _GLYPHS:
        from matplotlib.font_manager import FontProperties
        from matplotlib.textpath import TextPath

        font = FontProperties(family="sans-serif", weight="bold")
        path = TextPath((0, 0), letter, size=1, prop=font)
        _GLYPHS[letter] = (path, path.get_extents())
    return _GLYPHS[letter]


def draw_logo(ax, frame) -> None:
    """A sequence logo of ``frame`` (rows: positions, columns: letters) on ``ax``.

    Each letter is a glyph stretched to its value's height, positive values stacked up
    from zero and negative ones down, largest magnitude outermost (logomaker's layout
    with ``flip_below=False``, drawn from cached glyph outlines: a few milliseconds
    instead of about a second per logo).
    """
    from matplotlib.patches import PathPatch
    from matplotlib.transforms import Affine2D

    values = frame.to_numpy(dtype=float)
    letters = [str(c) for c in frame.columns]
    top = bottom = 0.0
    for x, row in zip(frame.index, values, strict=True):
        up = down = 0.0
        for k in np.argsort(np.abs(row)):
            height = abs(row[k])
            if height <= 0:
                continue
            path, ext = _glyph(letters[k])
            base = up if row[k] > 0 else down - height
            shape = (
                Affine2D()
                .translate(-ext.x0, -ext.y0)
                .scale(0.9 / max(ext.width, 1e-9), height / max(ext.height, 1e-9))
                .translate(x - 0.45, base)
            )
            color = _COLORS.get(letters[k].upper(), "0.4")
            ax.add_patch(PathPatch(shape.transform_path(path), facecolor=color, lw=0))
            if row[k] > 0:
                up += height
            else:
                down -= height
        top, bottom = max(top, up), min(bottom, down)
    pad = 0.05 * max(top - bottom, 1e-9)
    ax.set_xlim(frame.index[0] - 0.6, frame.index[-1] + 0.6)
    ax.set_ylim(bottom - pad, top + pad)


def mark_stages(ax, stages: list[dict]) -> None:
    """Name each optimizer stage at the step it starts (``stages``: the fit's, in order,
    with their ``iterations``), a dashed line where each after the first begins."""
    start = 0
    for k, stage in enumerate(stages):
        if k:
            ax.axvline(start, color="0.55", ls="--", lw=0.8)
        where = (max(start, ax.get_xlim()[0]), 1.0)
        ax.annotate(f" {stage['stage']}", where, xycoords=("data", "axes fraction"),
                    va="top", fontsize=8, color="0.35")  # fmt: skip
        start += int(stage.get("iterations", 0))


def plot_history(result, path: Path, plt) -> Path:
    """Train and validation NLL (bits per read) and validation I_var over training steps,
    the optimizer stages marked."""
    steps = [h["step"] for h in result.history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(steps, [h["train_nll"] for h in result.history], label="training")
    a.plot(steps, [h["val_nll"] for h in result.history], label="validation")
    steps_of = "full batch" if result.dataset is not None else "minibatches"
    a.set_xlabel(f"step ({steps_of})")
    per = "sequence" if kind_of(result.measurement) == "continuous" else "read"
    a.set_ylabel(f"NLL (bits per {per})")
    a.legend(frameon=False)
    a.set_title("negative log-likelihood", fontsize=10)
    b.plot(steps, [h["train_I_var_bits"] for h in result.history], label="training")
    b.plot(steps, [h["val_I_var_bits"] for h in result.history], label="validation")
    b.axhline(result.metrics["test"]["I_var_bits"], color="0.4", ls=":", label="test (final)")
    b.set_ylim(bottom=max(0.0, b.get_ylim()[0]))
    b.set_xlabel(f"step ({steps_of})")
    b.set_ylabel("I_var (bits)")
    b.legend(frameon=False)
    b.set_title("variational information", fontsize=10)
    if len(result.stages) > 1:
        for ax in (a, b):
            mark_stages(ax, result.stages)
    return save_figure(fig, (a, b), path)


def _test_t(result):
    test = result.dataset.subset("test")
    if len(test) == 0:
        test = result.dataset.subset("validation")
    x = torch.from_numpy(test.codes.astype(np.int64))
    t = result.t(x).double().cpu().numpy()
    return t, test.counts


def t_range(result) -> tuple[float, float] | None:
    """The range of ``t`` to draw the measurement over: the test data's (0.1% to 99.9%),
    or, for a fit that kept no data (streamed), the link's standardized input within
    3.5 standard deviations of its center; None when neither is known."""
    if result.dataset is not None:
        t, _ = _test_t(result)
        lo, hi = np.quantile(t, [0.001, 0.999])
        return float(lo), float(hi)
    m = result.measurement
    if not hasattr(m, "center") or not hasattr(m, "scale"):
        return None
    lo, hi = (float(m.center) + k * float(m.scale) for k in (-3.5, 3.5))
    if m.transform != "log":
        return lo, hi
    floor = float(m.floor())
    return max(np.exp(lo) - floor, 1e-30), float(np.exp(hi) - floor)


def plot_measurement(result, path: Path, plt) -> Path:
    """The learned p(bin | t) as a heatmap over the range of t met in the test data
    (:func:`t_range`)."""
    log = result.measurement.transform == "log"
    lo, hi = t_range(result)
    grid = np.geomspace(lo, hi, 200) if log and lo > 0 else np.linspace(lo, hi, 200)
    with torch.no_grad():
        p = result.measurement(torch.tensor(grid, dtype=torch.float32)).numpy()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    x = np.log10(grid) if log else grid
    mesh = ax.pcolormesh(x, np.arange(p.shape[1]), p.T, cmap="viridis", shading="nearest")
    fig.colorbar(mesh, ax=ax, label="p(bin | t)")
    ax.set_xlabel(f"log10 {result.output}" if log else result.output)
    ax.set_ylabel("bin (0 = dimmest)")
    ax.set_yticks(range(p.shape[1]))
    floor = result.measurement.floor()
    if log and lo <= floor <= hi:  # below the floor t barely changes the bins
        ax.axvline(np.log10(floor), color="white", linestyle="--", linewidth=1)
        ax.annotate(" floor", (np.log10(floor), p.shape[1] - 1), color="white", va="top")
    affine = result.measurement.config().get("kind") == "affine"
    what = "affine probit" + (" at the sort's gates" if affine and result.measurement.gated else "")
    title = what if affine else "ordinal, flexible link"
    ax.set_title(f"learned measurement process ({title}, with background)", fontsize=10)
    return save_figure(fig, (), path)


def plot_test(result, path: Path, plt) -> Path:
    """Distribution of predicted t among the test reads of each bin (box plots)."""
    t, counts = _test_t(result)
    log = result.measurement.transform == "log"
    values = np.log10(t) if log else t
    groups = [np.repeat(values, counts[:, k]) for k in range(counts.shape[1])]
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.boxplot(groups, positions=range(len(groups)), showfliers=False, widths=0.6)
    ax.set_xlabel("bin (0 = dimmest)")
    ax.set_ylabel(f"log10 {result.output}" if log else result.output)
    info = result.metrics["test"]["I_var_bits"]
    ax.set_title(
        f"test reads: predicted {result.output} by sorted bin (I_var = {info:.3f} bits)",
        fontsize=10,
    )
    return save_figure(fig, (ax,), path)
