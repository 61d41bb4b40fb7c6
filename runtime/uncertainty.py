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

Standard errors come from the pseudo-inverse restricted to the identified directions
and are reported in natural units (delta method); a parameter with a component along
an unidentified direction gets ``inf``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from bpm.runtime.contract import Slot, natural_derivative, to_natural
from bpm.runtime.hessian import data_tensors, default_nll, hessian, learned_slots
from bpm.runtime.identifiability_words import combination, describe, group_message, join_names

__all__ = ["Uncertainty", "analyze", "default_nll", "hessian", "pinv_sym"]


@dataclass
class Uncertainty:
    """Standard errors in natural units and the directions the data do not fix.

    ``standard_errors`` maps each learned parameter name to a float (scalars; kT for
    energies) or an array shaped like the parameter (matrices, zero-mean gauge).
    ``unidentified`` holds plain-language messages, one per group of parameters tied
    by flat directions. ``covariance`` is over ``coordinates`` (analysis coordinates:
    kT, or ``log(k - bound)`` for bounded parameters), zero-mean gauge.
    """

    standard_errors: dict[str, float | np.ndarray]
    unidentified: list[str]
    coordinates: list[tuple[str, tuple[int, ...]]]
    covariance: np.ndarray
    eigenvalues: np.ndarray
    null_directions: np.ndarray
    n_reads: float
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A short text: every scalar's standard error, each matrix's typical one, messages."""
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
) -> Uncertainty:
    """Standard errors of every learned parameter and the directions the data leave free.

    ``module`` and ``measurement`` hold the fitted values (the optimum); ``data`` is a
    :class:`bpm.runtime.data.Dataset`, a ``(codes, counts)`` pair or a table, whose
    reads of output ``output`` (default: :func:`bpm.runtime.contract.choose_output`)
    make the total NLL (``default_nll``); or pass ``nll(module, measurement)``
    returning the total NLL in nats. A direction is unidentified when its curvature,
    relative to the largest (on the unit-diagonal scale), is below ``rel_tol`` (flat up
    to rounding; a direction merely weakly fixed by the data keeps a finite, large
    standard error); a parameter takes part when at least ``involvement`` of its weight
    lies on unidentified directions, and every parameter so reported as ``inf`` is
    named in a message. ``threads`` sets torch's threads for the duration (the
    work is many small operations, which extra threads slow down on a busy machine).
    """
    if nll is None and (measurement is None or data is None):
        raise ValueError("analyze needs a measurement process and data, or an nll closure")
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        H, z0, slots, _, n_model = hessian(module, measurement, data, nll=nll, output=output)
    finally:
        torch.set_num_threads(old_threads)
    Q = _gauge_basis(slots)  # [n_model, k]: zero-mean gauge subspace
    Hzz = H[:n_model, :n_model]
    notes: list[str] = []
    P = Q.T @ _profiled(H, n_model, notes) @ Q
    P = 0.5 * (P + P.T)
    diag = np.clip(np.diag(P), 0.0, None)
    scale = np.where(diag > 0, 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0)), 1.0)
    S = P * scale[:, None] * scale[None, :]
    evals, evecs = np.linalg.eigh(S)
    top = max(float(np.abs(evals).max()), 1e-300)
    null = np.abs(evals) < rel_tol * top
    negative = evals <= -rel_tol * top
    keep = ~(null | negative)
    cov_k = ((evecs[:, keep] / evals[keep]) @ evecs[:, keep].T) * scale[:, None] * scale[None, :]
    cov = Q @ cov_k @ Q.T  # analysis coordinates, zero-mean gauge

    k_names = _k_names(slots)
    alone = np.diag(Q.T @ Hzz @ Q)
    if negative.any():
        names = _involved(evecs[:, negative], k_names, involvement)
        notes.append(
            f"the likelihood curves downward along {int(negative.sum())} direction(s) "
            f"involving {join_names(names)}: the fit has not reached a minimum, so these "
            "standard errors are not reliable (reported as nan)"
        )
    # A coordinate's value is identified when its functional has no weight on the flat
    # directions (in the scaled coordinates, where those directions are orthonormal).
    A = (Q * scale[None, :]).T  # [k, n_model]: functional of each z-coordinate
    norms = np.linalg.norm(A, axis=0) + 1e-300

    def weight(vectors):
        if not vectors.shape[1]:
            return np.zeros(n_model)
        return np.linalg.norm(vectors.T @ A, axis=0) / norms

    free = weight(evecs[:, null]) > involvement
    unstable = weight(evecs[:, negative]) > involvement
    kinds = {slot.name: slot.transform for slot in slots}
    messages = describe(
        evecs[:, null], k_names, alone, kinds, involvement, measurement is not None,
        _names_with(free, slots),
    )  # fmt: skip
    n_reads = float(data_tensors(data, torch.float64)[1].sum()) if data is not None else np.nan
    return Uncertainty(
        standard_errors=_standard_errors(cov, free, unstable, z0[:n_model], slots),
        unidentified=messages,
        coordinates=_coordinate_names(slots),
        covariance=cov,
        eigenvalues=evals,
        null_directions=Q @ (evecs[:, null] * scale[:, None]),
        n_reads=n_reads,
        notes=notes,
    )


def _profiled(H: np.ndarray, n_model: int, notes: list[str]) -> np.ndarray:
    """The model block of ``H`` with the measurement's parameters profiled out.

    Where the measurement's own block curves downward (a saddle), profiling is
    meaningless (the Schur complement can turn negative): the model block is returned
    as is (conditional on the measurement's values) and a note says so.
    """
    Hzz = H[:n_model, :n_model]
    Hzp = H[:n_model, n_model:]
    Hpp = H[n_model:, n_model:]
    if not Hpp.size:
        return Hzz
    curvature = np.linalg.eigvalsh(0.5 * (Hpp + Hpp.T))
    downward = int((curvature < -1e-6 * max(float(curvature.max()), 1e-300)).sum())
    if downward:
        notes.append(
            f"the measurement process is not at a minimum (the likelihood curves "
            f"downward along {downward} direction(s) of its parameters), so the "
            "standard errors are conditional on its fitted values, not profiled "
            "(they understate the uncertainty); refit to convergence for profiled ones"
        )
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

    The unit-diagonal scaling uses a floor on the diagonal (``rel_tol`` of its largest
    entry): a zero or slightly negative diagonal (a nuisance parameter the data barely
    touch, such as a background fraction at its bound) must not blow the scaled matrix
    up, which would push every real eigenvalue under the cut and silently skip the
    profiling.
    """
    diag = np.diag(M)
    floor = rel_tol * max(float(diag.max(initial=0.0)), 1e-300)
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


def _standard_errors(cov, free, unstable, z0, slots: list[Slot]) -> dict[str, float | np.ndarray]:
    """Natural-unit standard errors; ``inf`` where unidentified, ``nan`` where unstable."""
    variance = np.clip(np.diag(cov), 0.0, None)
    out = {}
    k = 0
    for slot in slots:
        part = slice(k, k + slot.size)
        natural = to_natural(z0[part], slot.transform, slot.bound)
        slope = natural_derivative(natural, slot.transform, slot.bound)
        se = np.abs(slope) * np.sqrt(variance[part])
        se = np.where(free[part], np.inf, se)
        se = np.where(unstable[part], np.nan, se)
        out[slot.name] = se.reshape(slot.shape) if slot.shape else float(se[0])
        k += slot.size
    return out


# ---------------------------------------------------------------- names of before the split

#: The names this module had before the Hessian and the words moved out (tests,
#: benchmarks/lac_modes.py); new code imports the public names.
_pinv_sym = pinv_sym
_combination = combination
_message = group_message


def _layout(module: torch.nn.Module) -> list[tuple[str, str, str, float | None, tuple]]:
    """(name, attribute, transform, bound, shape) of each learned parameter (old callers;
    new code uses :func:`bpm.runtime.hessian.learned_slots`)."""
    return [(s.name, s.attribute, s.transform, s.bound, s.shape) for s in learned_slots(module)]
