"""Standard errors and identifiability from the curvature of the likelihood.

At the maximum-likelihood fit, the Hessian ``H`` of the total negative log-likelihood
(in nats, summed over reads) approximates the inverse covariance of the estimates.
:func:`analyze` computes it (:mod:`bpm.runtime.hessian`) with respect to the model's
learned parameters in their stored coordinates (energies and matrix entries in kT,
positive parameters as ``log(k - bound)``), jointly with the measurement process's
parameters, which are nuisance parameters and are profiled out (Schur complement).

Two kinds of flat directions are handled:

- the gauge of each additive matrix (adding ``c`` to every letter at one position and
  ``-c`` to the offset changes nothing): exact, known in advance, and removed by
  working in the zero-mean gauge (the subspace where every position sums to zero);
- any other direction of (near-)zero curvature: found from the eigenvalues of the
  profiled, gauge-fixed Hessian (scaled to unit diagonal, so units do not matter) and
  described in words (:mod:`bpm.runtime.identifiability_words`), e.g. "k_on and
  G_R.offset appear only as the combination k_on·exp(-G_R.offset): the data fix the
  combination, not each".

Standard errors come only from a positive-definite curvature at an optimum (the
gradient below :data:`bpm.runtime.train.GRADIENT_TOL` or the fit converged, and no
direction of downward curvature): then from the pseudo-inverse restricted to the
identified directions, in natural units (delta method), ``inf`` for a parameter with a
component along an unidentified direction. Elsewhere ``status`` is
``"not at an optimum"``, the standard errors are ``nan`` (``inf`` still marks the
unidentified ones) and ``notes`` says why.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from bpm.runtime.contract import Slot, natural_derivative, to_natural
from bpm.runtime.curvature import (
    coordinate_names,
    downward,
    gauge_basis,
    involved,
    k_names,
    names_with,
    pinv_sym,
    profiled,
)
from bpm.runtime.hessian import data_tensors, default_nll, gradient, hessian, refit_lbfgs
from bpm.runtime.identifiability_words import (
    NOT_AT_OPTIMUM,
    NOT_IDENTIFIED,
    OK,
    describe,
    optimum_words,
    refit_words,
)
from bpm.runtime.train import GRADIENT_TOL, LOG2

#: Profiled curvature at most this fraction of a coordinate's own is rounding
#: (:func:`unit_diagonal`).
CANCELLED = 1e-6

__all__ = ["Uncertainty", "analyze", "default_nll", "hessian", "pinv_sym", "refit_lbfgs"]


@dataclass
class Uncertainty:
    """Standard errors in natural units and the directions the data do not fix.

    ``standard_errors`` maps each learned parameter name to a float (scalars; kT for
    energies) or an array shaped like the parameter (matrices, zero-mean gauge).
    ``unidentified`` holds plain-language messages, one per group of parameters tied
    by flat directions. ``covariance`` is over ``coordinates`` (analysis coordinates:
    kT, or ``log(k - bound)`` for bounded parameters), zero-mean gauge; all ``nan``
    where the point is not an optimum. ``status``: ``"ok"`` or ``"not at an optimum"``;
    ``gradient_norm`` (bits per read), ``negative_directions`` and ``why`` (words)
    say which; ``reasons`` maps each parameter without a finite standard error to
    ``"not identified"`` or ``"not at an optimum"``; ``converged`` is what the fit
    said of itself (None: not told, or refitted). ``values``: every parameter in natural
    units at the analysis point (after ``refit``, the refitted optimum's).
    """

    standard_errors: dict[str, float | np.ndarray]
    unidentified: list[str]
    coordinates: list[tuple[str, tuple[int, ...]]]
    covariance: np.ndarray
    eigenvalues: np.ndarray
    null_directions: np.ndarray
    n_reads: float
    notes: list[str] = field(default_factory=list)
    status: str = OK
    gradient_norm: float = float("nan")
    negative_directions: int = 0
    why: str = ""
    reasons: dict[str, str] = field(default_factory=dict)
    converged: bool | None = None
    values: dict = field(default_factory=dict)

    def status_summary(self) -> dict:
        """``{"status", "gradient_norm", "gradient_tol", "converged", "negative_directions",
        "why"}``: whether the analysis point is an optimum, as summary.json writes it."""
        return {
            "status": self.status,
            "gradient_norm": self.gradient_norm if math.isfinite(self.gradient_norm) else None,
            "gradient_tol": GRADIENT_TOL,
            "converged": self.converged,
            "negative_directions": self.negative_directions,
            "why": self.why,
        }

    def summary(self) -> str:
        """A short text: every scalar's standard error, each matrix's typical one, messages."""
        if self.status != OK:
            lines = [self.why]
            lines += [f"{name}: {reason}" for name, reason in self.reasons.items()]
            return "\n".join(lines + [f"not identified: {m}" for m in self.unidentified])
        lines = []
        for name, se in self.standard_errors.items():
            if isinstance(se, np.ndarray):
                finite = se[np.isfinite(se)]
                median = f"{np.median(finite):.3g}" if finite.size else "inf"
                lines.append(f"{name}: median standard error {median} per entry")
            else:
                lines.append(f"{name}: standard error {se:.3g}")
        lines += [f"not identified: {m}" for m in self.unidentified]
        return "\n".join(lines)


# ---------------------------------------------------------------- analysis


def analyze(
    module: torch.nn.Module,
    measurement: torch.nn.Module | None = None,
    data=None,
    *,
    nll: Callable | None = None,
    rel_tol: float = 1e-7,
    involvement: float = 0.05,
    threads: int | None = 1,
    output: str | None = None,
    converged: bool | None = None,
    refit: int = 0,
    dispersion: float = 1.0,
) -> Uncertainty:
    """Standard errors of every learned parameter and the directions the data leave free.

    ``module`` and ``measurement`` hold the fitted values; ``data`` is a
    :class:`bpm.runtime.data.Dataset`, a ``(codes, counts)`` pair or a table, whose
    reads of output ``output`` (default: :func:`bpm.runtime.contract.choose_output`)
    make the total NLL (``default_nll``; analyzed in float64 copies); or pass
    ``nll(module, measurement)`` returning the total NLL in nats.

    Standard errors come only from a positive-definite curvature at an optimum: the
    point counts as stationary when ``converged`` (what the fit said of itself,
    ``FitResult.convergence["converged"]``) is true or the gradient of the NLL is below
    :data:`bpm.runtime.train.GRADIENT_TOL` bits per read (with ``nll`` and no ``data``
    the reads are unknown: pass ``converged``), and the joint Hessian (model and
    measurement, gauge-fixed) has no direction of downward curvature. Otherwise
    ``status`` is ``"not at an optimum"``, every standard error is ``nan`` (``inf`` for
    the parameters the data do not fix, which are still found) and ``notes`` says why.
    ``refit`` > 0 first runs up to that many float64 L-BFGS iterations on the reads
    (copies; the fit is untouched), and the errors are then those of the refitted optimum.

    A direction is unidentified when its curvature, relative to the largest (on the
    unit-diagonal scale), is below ``rel_tol`` (flat up to rounding; a direction merely
    weakly fixed keeps a finite, large standard error); a parameter takes part when at
    least ``involvement`` of its weight lies on unidentified directions, and every
    parameter so reported as ``inf`` is named in a message. ``threads`` sets torch's
    threads for the duration (many small operations, which extra threads slow down).
    ``dispersion`` (at least 1) multiplies the covariance: the reads overstate their
    information that many times (:class:`~bpm.runtime.options.FitOptions`).
    """
    if nll is None and (measurement is None or data is None):
        raise ValueError("analyze needs a measurement process and data, or an nll closure")
    notes: list[str] = []
    n_reads = float(data_tensors(data, torch.float64)[1].sum()) if data is not None else np.nan
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        if nll is None:
            module, measurement = (
                copy.deepcopy(module).double(),
                copy.deepcopy(measurement).double(),
            )
        if refit > 0 and nll is None:
            before = _norm(gradient(module, measurement, data, output=output), n_reads)
            steps = refit_lbfgs(module, measurement, data, refit, output)
            converged = None  # the fit's own word is about the point before the refit
        g = _norm(gradient(module, measurement, data, nll=nll, output=output), n_reads)
        H, z0, slots, _, n_model = hessian(module, measurement, data, nll=nll, output=output)
        values = {k: v.detach().double().numpy() for k, v in module.get_params().items()}
    finally:
        torch.set_num_threads(old_threads)
    if refit > 0 and nll is None:
        notes.append(refit_words(steps, before, g))
    Q = gauge_basis(slots)  # [n_model, k]: zero-mean gauge subspace
    names_of = k_names(slots)
    n_meas = H.shape[0] - n_model
    G = np.zeros((H.shape[0], Q.shape[1] + n_meas))
    G[:n_model, : Q.shape[1]] = Q
    G[n_model:, Q.shape[1] :] = np.eye(n_meas)
    joint_negative = downward(G.T @ H @ G, rel_tol)
    P = Q.T @ profiled(H, n_model) @ Q
    P = 0.5 * (P + P.T)
    diag = unit_diagonal(P, Q.T @ H[:n_model, :n_model] @ Q)
    scale = np.where(diag > 0, 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0)), 1.0)
    S = P * scale[:, None] * scale[None, :]
    evals, evecs = np.linalg.eigh(S)
    top = max(float(np.abs(evals).max()), 1e-300)
    null = np.abs(evals) < rel_tol * top
    negative = evals <= -rel_tol * top  # the profiled curvature of a saddle
    keep = ~(null | negative)

    stationary = bool(converged) or g < GRADIENT_TOL
    # A downward direction of the measurement alone (an eigenvector with no weight on the
    # model: background bins whose share runs to zero, their optimum at infinity) does not
    # couple to the model, so holding it changes no model curvature; one that moves the
    # model's parameters is a saddle.
    on_model = (joint_negative[: Q.shape[1]] ** 2).sum(0) >= involvement
    saddle = joint_negative[:, on_model]
    names = involved(saddle, names_of + ["the measurement process"] * n_meas, involvement)
    n_down = saddle.shape[1]
    if not n_down and negative.any():
        n_down = int(negative.sum())
        names = involved(evecs[:, negative], names_of, involvement)
    if (~on_model).any():
        notes.append(
            f"the measurement process's likelihood curves downward along {int((~on_model).sum())} "
            "direction(s) of its own parameters that do not move the model's (e.g. a "
            "background bin whose share runs to zero): held at their values, which leaves "
            "the model's curvature unchanged"
        )
    ok = stationary and n_down == 0
    why = "" if ok else optimum_words(g, GRADIENT_TOL, converged, n_down, names)
    if ok:
        cov_k = (evecs[:, keep] / evals[keep]) @ evecs[:, keep].T
        cov = Q @ (cov_k * scale[:, None] * scale[None, :]) @ Q.T  # zero-mean gauge
        cov = cov * dispersion  # reads that overstate their information
    else:
        notes.append(why)
        cov = np.full((n_model, n_model), np.nan)

    # A coordinate's value is identified when its functional has no weight on the flat
    # directions (in the scaled coordinates, where those directions are orthonormal).
    A = (Q * scale[None, :]).T  # [k, n_model]: functional of each z-coordinate
    norms = np.linalg.norm(A, axis=0) + 1e-300
    flat = evecs[:, null]
    weights = np.linalg.norm(flat.T @ A, axis=0) / norms if flat.shape[1] else 0 * norms
    free = weights > involvement
    kinds = {slot.name: slot.transform for slot in slots}
    messages = describe(
        flat, names_of, np.diag(Q.T @ H[:n_model, :n_model] @ Q), kinds, involvement,
        measurement is not None, names_with(free, slots),
    )  # fmt: skip
    standard_errors, reasons = _standard_errors(cov, free, ok, z0[:n_model], slots)
    return Uncertainty(
        standard_errors=standard_errors,
        unidentified=messages,
        coordinates=coordinate_names(slots),
        covariance=cov,
        eigenvalues=evals,
        null_directions=Q @ (flat * scale[:, None]),
        n_reads=n_reads,
        notes=notes,
        status=OK if ok else NOT_AT_OPTIMUM,
        gradient_norm=g,
        negative_directions=n_down,
        why=why,
        reasons=reasons,
        converged=converged,
        values=values,
    )


def unit_diagonal(profiled_curvature: np.ndarray, curvature: np.ndarray) -> np.ndarray:
    """The diagonal that scales the profiled model curvature to unit size: its own, except
    where profiling out the measurement took a coordinate's curvature down to
    :data:`CANCELLED` of what it had (a parameter the measurement process absorbs exactly,
    such as ``t_sat`` against the affine link's offset when the floor is at zero). There
    what is left is rounding, of either sign, and such a coordinate is scaled by its own
    unprofiled curvature: its direction then reads as flat (not identified) instead of at
    random as downward (a saddle) or as a huge finite error."""
    mine, whole = np.diag(profiled_curvature), np.abs(np.diag(curvature))
    cancelled = mine <= CANCELLED * whole
    return np.where(cancelled, whole, np.clip(mine, 0.0, None))


def _norm(g: np.ndarray, n_reads: float) -> float:
    """A gradient of the total NLL (nats) as its norm in bits per read (nan: no reads)."""
    return float(np.linalg.norm(g)) / n_reads / LOG2 if n_reads > 0 else float("nan")


def _standard_errors(cov, free, ok: bool, z0, slots: list[Slot]):
    """Natural-unit standard errors (``inf`` where unidentified, ``nan`` where the point is
    not an optimum) and each parameter's reason when it has no finite one."""
    variance = np.clip(np.diag(cov), 0.0, None)
    out, reasons = {}, {}
    k = 0
    for slot in slots:
        part = slice(k, k + slot.size)
        natural = to_natural(z0[part], slot.transform, slot.bound)
        slope = natural_derivative(natural, slot.transform, slot.bound)
        se = np.abs(slope) * np.sqrt(variance[part]) if ok else np.full(slot.size, np.nan)
        se = np.where(free[part], np.inf, se)
        out[slot.name] = se.reshape(slot.shape) if slot.shape else float(se[0])
        if free[part].any():
            reasons[slot.name] = NOT_IDENTIFIED
        elif not ok:
            reasons[slot.name] = NOT_AT_OPTIMUM
        k += slot.size
    return out, reasons
