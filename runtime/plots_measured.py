"""Figures of the measurements that are not sorts: a continuous score or a count pair
against the model's output on the test sequences, with the fitted measurement process
drawn over them (``measurement.png`` and ``test_prediction.png`` of a fit directory);
and :func:`save_figure`, which writes every figure of a fit directory."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from .measurement_kinds import kind_of


def _axis(result, t: np.ndarray):
    """``t`` as drawn (log10 when the link reads ``log t``), its label and a grid."""
    m = result.measurement
    link = getattr(m, "link", m)
    log = link.transform == "log" and bool((t > 0).all())
    shown = np.log10(t) if log else t
    lo, hi = np.quantile(shown, [0.001, 0.999])
    grid = np.linspace(lo, hi, 200)
    label = f"log10 {result.output}" if log else result.output
    return shown, grid, (10**grid if log else grid), label


def plot_measured(result, t: np.ndarray, obs: np.ndarray, path: Path, plt) -> Path:
    """The test sequences' measurement against their output ``t`` with the fitted
    process over them: a score with ``E[y | t]`` and the band holding 68% of the noise
    (its scale, the skewed t's at one scale either side); a count pair with each
    sequence's selected fraction (point size by reads) and the predicted fraction."""
    m = result.measurement
    shown, grid, t_grid, label = _axis(result, t)
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    grid_t = torch.tensor(t_grid, dtype=torch.float32)
    if kind_of(m) == "continuous":
        y = obs[:, 1]
        ax.hexbin(shown, y, gridsize=60, bins="log", cmap="Greys", mincnt=1)
        with torch.no_grad():
            mean = m.mean(grid_t).numpy()
            z = m.standardized_mean(grid_t)
            spread = (m.noise_scale(z) * m.y_std).numpy()
        ax.plot(grid, mean, color="C3", label="fitted E[y | t]")
        ax.fill_between(grid, mean - spread, mean + spread, color="C3", alpha=0.2,
                        label=f"noise scale ({m.noise})")  # fmt: skip
        ax.set_ylabel("y (measured score)")
        r2 = result.metrics["test"].get("R2", float("nan"))
        ax.set_title(f"test sequences: score against {result.output} (R2 = {r2:.3f})", fontsize=10)
    else:
        reads = obs.sum(1)
        fraction = obs[:, 1] / np.maximum(reads, 1)
        size = 2 + 30 * reads / max(float(reads.max()), 1.0)
        ax.scatter(shown, fraction, s=size, color="0.3", alpha=0.25, linewidths=0)
        with torch.no_grad():
            ax.plot(grid, m.selected_fraction(grid_t).numpy(), color="C3", label="fitted")
        columns = list(result.dataset.bin_names) if result.dataset is not None else ["", ""]
        ax.set_ylabel(f"fraction of reads in '{columns[1]}'")
        ax.set_title(f"test sequences: count pair against {result.output} (kappa = "
                     f"{m.kappa():.3g})", fontsize=10)  # fmt: skip
    ax.set_xlabel(label)
    ax.legend(frameon=False, fontsize=8)
    return save_figure(fig, (ax,), path)


#: The formats every figure is written in, besides its PNG (:func:`figure_formats`).
FORMATS = ("png", "pdf")
_EXTRA: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("bpm_figures", default=())


def parse_formats(text: str | tuple | list) -> tuple[str, ...]:
    """``"png,pdf"`` as ``("png", "pdf")``: PNG always first (the report embeds it), each
    format once, only those of :data:`FORMATS`.

    >>> parse_formats("pdf"), parse_formats(" PNG , pdf ")
    (('png', 'pdf'), ('png', 'pdf'))
    """
    from bpm.compiler.errors import BpmError

    names = text.split(",") if isinstance(text, str) else list(text)
    found = [n.strip().lower().lstrip(".") for n in names if n.strip()]
    unknown = [n for n in found if n not in FORMATS]
    if unknown:
        raise BpmError(f"unknown figure format {unknown[0]!r}: give png, pdf or png,pdf")
    return tuple(f for f in FORMATS if f == "png" or f in found)


@contextlib.contextmanager
def figure_formats(formats: tuple[str, ...]) -> Iterator[None]:
    """Within this block :func:`save_figure` also writes each of ``formats`` other than PNG
    beside the PNG (``logo_G.pdf`` beside ``logo_G.png``)."""
    token = _EXTRA.set(tuple(f for f in parse_formats(formats) if f != "png"))
    try:
        yield
    finally:
        _EXTRA.reset(token)


def save_figure(fig, open_axes, path: Path) -> Path:
    """Hide the top and right spines of ``open_axes``, then write ``fig`` as a PNG (and in
    the formats of the enclosing :func:`figure_formats`, beside it) and close it (every
    figure of a fit directory is saved this way). Returns the PNG's path."""
    import matplotlib.pyplot as plt

    for ax in open_axes:
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    for extra in _EXTRA.get():
        fig.savefig(Path(path).with_suffix(f".{extra}"), metadata=_METADATA.get(extra))
    plt.close(fig)
    return path


#: No creation date in a PDF, so the same fit writes the same bytes.
_METADATA = {"pdf": {"CreationDate": None}}
