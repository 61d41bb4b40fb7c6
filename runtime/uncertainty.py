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
    said of itself (None: not told, or refitted).
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


# ---------------------------------------------------------------- the zero-mean gauge


def _is_gauged(slot: Slot) -> bool:
    """An additive matrix, whose positions each carry a gauge freedom against the offset."""
    return slot.kind == "matrix" and len(slot.shape) == 2


def _gauge_basis(slots: list[Slot]) -> np.ndarray:
    """Columns spanning the zero-mean-gauge subspace of the analysis coordinates.

    Each additive matrix position gets ``A - 1`` orthonormal contrasts (rows summing
    to zero); every other coordinate is kept as is.
    """
    blocks = []
    for slot in slots:
        if _is_gauged(slot):
            width, letters = slot.shape
            blocks.append(np.kron(np.eye(width), _contrasts(letters)))
        else:
            blocks.append(np.eye(slot.size))
    rows = sum(b.shape[0] for b in blocks)
    cols = sum(b.shape[1] for b in blocks)
    basis = np.zeros((rows, cols))
    r = c = 0
    for b in blocks:
        basis[r : r + b.shape[0], c : c + b.shape[1]] = b
        r += b.shape[0]
        c += b.shape[1]
    return basis


def _contrasts(n: int) -> np.ndarray:
    """An orthonormal basis of the vectors of length ``n`` that sum to zero: ``[n, n-1]``."""
    q, _ = np.linalg.qr(np.eye(n) - 1.0 / n)
    return q[:, : n - 1]


def _k_names(slots: list[Slot]) -> list[str]:
    """The parameter name of each gauge-fixed coordinate (a matrix gives ``w * (A - 1)``)."""
    out = []
    for slot in slots:
        size = slot.shape[0] * (slot.shape[1] - 1) if _is_gauged(slot) else slot.size
        out += [slot.name] * size
    return out


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
    finally:
        torch.set_num_threads(old_threads)
    if refit > 0 and nll is None:
        notes.append(refit_words(steps, before, g))
    Q = _gauge_basis(slots)  # [n_model, k]: zero-mean gauge subspace
    k_names = _k_names(slots)
    n_meas = H.shape[0] - n_model
    G = np.zeros((H.shape[0], Q.shape[1] + n_meas))
    G[:n_model, : Q.shape[1]] = Q
    G[n_model:, Q.shape[1] :] = np.eye(n_meas)
    joint_negative = _downward(G.T @ H @ G, rel_tol)
    P = Q.T @ _profiled(H, n_model) @ Q
    P = 0.5 * (P + P.T)
    diag = np.clip(np.diag(P), 0.0, None)
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
    names = _involved(saddle, k_names + ["the measurement process"] * n_meas, involvement)
    downward = saddle.shape[1]
    if not downward and negative.any():
        downward = int(negative.sum())
        names = _involved(evecs[:, negative], k_names, involvement)
    if (~on_model).any():
        notes.append(
            f"the measurement process's likelihood curves downward along {int((~on_model).sum())} "
            "direction(s) of its own parameters that do not move the model's (e.g. a "
            "background bin whose share runs to zero): held at their values, which leaves "
            "the model's curvature unchanged"
        )
    ok = stationary and downward == 0
    why = "" if ok else optimum_words(g, GRADIENT_TOL, converged, downward, names)
    if ok:
        cov_k = (evecs[:, keep] / evals[keep]) @ evecs[:, keep].T
        cov = Q @ (cov_k * scale[:, None] * scale[None, :]) @ Q.T  # zero-mean gauge
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
        flat, k_names, np.diag(Q.T @ H[:n_model, :n_model] @ Q), kinds, involvement,
        measurement is not None, _names_with(free, slots),
    )  # fmt: skip
    standard_errors, reasons = _standard_errors(cov, free, ok, z0[:n_model], slots)
    return Uncertainty(
        standard_errors=standard_errors,
        unidentified=messages,
        coordinates=_coordinate_names(slots),
        covariance=cov,
        eigenvalues=evals,
        null_directions=Q @ (flat * scale[:, None]),
        n_reads=n_reads,
        notes=notes,
        status=OK if ok else NOT_AT_OPTIMUM,
        gradient_norm=g,
        negative_directions=downward,
        why=why,
        reasons=reasons,
        converged=converged,
    )


def _norm(g: np.ndarray, n_reads: float) -> float:
    """A gradient of the total NLL (nats) as its norm in bits per read (nan: no reads)."""
    return float(np.linalg.norm(g)) / n_reads / LOG2 if n_reads > 0 else float("nan")


def _downward(M: np.ndarray, rel_tol: float) -> np.ndarray:
    """Directions of curvature below ``-rel_tol`` of the largest, on the unit-diagonal
    scale (columns, orthonormal in the scaled coordinates). The scale's diagonal is
    floored at 1e-6 of its largest entry: a coordinate the data do not touch has
    curvature at rounding level, whose sign means nothing, and must not be blown up."""
    M = 0.5 * (M + M.T)
    diag = np.diag(M)
    floor = 1e-6 * max(float(diag.max(initial=0.0)), 1e-300)
    d = np.sqrt(np.clip(diag, floor, None))
    w, v = np.linalg.eigh(M / d[:, None] / d[None, :])
    top = max(float(np.abs(w).max(initial=0.0)), 1e-300)
    return v[:, w <= -rel_tol * top]


def _profiled(H: np.ndarray, n_model: int) -> np.ndarray:
    """The model block of ``H`` with the measurement's parameters profiled out (Schur
    complement over the measurement's directions of positive curvature)."""
    Hzz = H[:n_model, :n_model]
    Hzp = H[:n_model, n_model:]
    Hpp = H[n_model:, n_model:]
    if not Hpp.size:
        return Hzz
    return Hzz - Hzp @ pinv_sym(Hpp, 1e-12) @ Hzp.T


def _names_with(mask, slots: list[Slot]) -> list[str]:
    """The learned parameters with at least one coordinate set in ``mask`` (z order)."""
    out, k = [], 0
    for slot in slots:
        if mask[k : k + slot.size].any():
            out.append(slot.name)
        k += slot.size
    return out


def _involved(vectors, k_names, involvement) -> list[str]:
    proj = vectors @ vectors.T
    order = list(dict.fromkeys(k_names))
    index = {n: [i for i, c in enumerate(k_names) if c == n] for n in order}
    return [n for n in order if float(np.trace(proj[np.ix_(index[n], index[n])])) > involvement]


def pinv_sym(M: np.ndarray, rel_tol: float) -> np.ndarray:
    """Pseudo-inverse of a symmetric matrix, dropping eigenvalues below ``rel_tol`` * max.

    The unit-diagonal scaling uses a floor on the diagonal (1e-6, or ``rel_tol`` if
    larger, of its largest entry): a zero or slightly negative diagonal (a nuisance
    parameter the data barely
    touch, such as a background fraction at its bound) must not blow the scaled matrix
    up, which would push every real eigenvalue under the cut and silently skip the
    profiling.
    """
    diag = np.diag(M)
    floor = max(rel_tol, 1e-6) * max(float(diag.max(initial=0.0)), 1e-300)
    d = np.sqrt(np.clip(diag, floor, None))
    S = M / d[:, None] / d[None, :]
    w, v = np.linalg.eigh(0.5 * (S + S.T))
    keep = w > rel_tol * max(float(w.max()), 1e-300)
    return ((v[:, keep] / w[keep]) @ v[:, keep].T) / d[:, None] / d[None, :]


def _coordinate_names(slots: list[Slot]) -> list[tuple[str, tuple[int, ...]]]:
    out = []
    for slot in slots:
        if slot.shape:
            out += [(slot.name, idx) for idx in np.ndindex(*slot.shape)]
        else:
            out.append((slot.name, ()))
    return out


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
