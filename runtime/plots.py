"""Figures of a fit: energy logos, the measurement process, training history, test data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .measurement_kinds import kind_of
from .plots_errors import plot_errors
from .plots_logo import plot_logos
from .plots_measured import figure_formats, plot_measured, save_figure
from .site_tables import ReportTables, report_tables


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed), imported on first use."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_all(
    result,
    directory: Path,
    tables: ReportTables | None = None,
    gauge: str = "zero-mean",
    formats: tuple[str, ...] = ("png",),
) -> list[Path]:
    """Write every figure of ``result`` into ``directory``; returns the PNGs' paths.

    ``tables``: the site tables to draw (:func:`~bpm.runtime.site_tables.report_tables`),
    by default made in ``gauge`` (the library consensus as wild type). ``formats``: each
    figure is a PNG, and also a PDF beside it when ``formats`` holds ``"pdf"``.
    """
    from .plots_pairwise import plot_pairs

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tables = tables or report_tables(result, gauge)
    plt = pyplot()
    paths = []
    try:
        with figure_formats(formats):
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
