"""The linear algebra of :mod:`bpm.runtime.uncertainty`: the zero-mean gauge and curvature.

Each additive matrix's gauge (a constant added at one position and subtracted from the
offset) is an exact flat direction, removed by working in the subspace where every
position sums to zero (:func:`gauge_basis`). The rest are helpers on symmetric
matrices: directions of downward curvature (:func:`downward`), the Schur complement
that profiles out the measurement process (:func:`profiled`), a pseudo-inverse robust
to a zero diagonal (:func:`pinv_sym`), and which parameters a set of directions moves.
"""

from __future__ import annotations

import numpy as np

from bpm.runtime.contract import Slot

__all__ = [
    "contrasts",
    "coordinate_names",
    "downward",
    "gauge_basis",
    "involved",
    "is_gauged",
    "k_names",
    "names_with",
    "pinv_sym",
    "profiled",
]


def is_gauged(slot: Slot) -> bool:
    """An additive matrix, whose positions each carry a gauge freedom against the offset."""
    return slot.kind == "matrix" and len(slot.shape) == 2


def gauge_basis(slots: list[Slot]) -> np.ndarray:
    """Columns spanning the zero-mean-gauge subspace of the analysis coordinates.

    Each additive matrix position gets ``A - 1`` orthonormal contrasts (rows summing
    to zero); every other coordinate is kept as is.
    """
    blocks = []
    for slot in slots:
        if is_gauged(slot):
            width, letters = slot.shape
            blocks.append(np.kron(np.eye(width), contrasts(letters)))
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


def contrasts(n: int) -> np.ndarray:
    """An orthonormal basis of the vectors of length ``n`` that sum to zero: ``[n, n-1]``."""
    q, _ = np.linalg.qr(np.eye(n) - 1.0 / n)
    return q[:, : n - 1]


def k_names(slots: list[Slot]) -> list[str]:
    """The parameter name of each gauge-fixed coordinate (a matrix gives ``w * (A - 1)``)."""
    out = []
    for slot in slots:
        size = slot.shape[0] * (slot.shape[1] - 1) if is_gauged(slot) else slot.size
        out += [slot.name] * size
    return out


def coordinate_names(slots: list[Slot]) -> list[tuple[str, tuple[int, ...]]]:
    out = []
    for slot in slots:
        if slot.shape:
            out += [(slot.name, idx) for idx in np.ndindex(*slot.shape)]
        else:
            out.append((slot.name, ()))
    return out


def downward(M: np.ndarray, rel_tol: float) -> np.ndarray:
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


def profiled(H: np.ndarray, n_model: int) -> np.ndarray:
    """The model block of ``H`` with the measurement's parameters profiled out (Schur
    complement over the measurement's directions of positive curvature)."""
    Hzz = H[:n_model, :n_model]
    Hzp = H[:n_model, n_model:]
    Hpp = H[n_model:, n_model:]
    if not Hpp.size:
        return Hzz
    return Hzz - Hzp @ pinv_sym(Hpp, 1e-12) @ Hzp.T


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


def names_with(mask, slots: list[Slot]) -> list[str]:
    """The learned parameters with at least one coordinate set in ``mask`` (z order)."""
    out, k = [], 0
    for slot in slots:
        if mask[k : k + slot.size].any():
            out.append(slot.name)
        k += slot.size
    return out


def involved(vectors, k_names, involvement) -> list[str]:
    proj = vectors @ vectors.T
    order = list(dict.fromkeys(k_names))
    index = {n: [i for i, c in enumerate(k_names) if c == n] for n in order}
    return [n for n in order if float(np.trace(proj[np.ix_(index[n], index[n])])) > involvement]
