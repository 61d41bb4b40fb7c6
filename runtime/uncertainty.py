"""Standard errors and identifiability from the curvature of the likelihood.

At the maximum-likelihood fit, the Hessian ``H`` of the total negative log-likelihood
(in nats, summed over reads) approximates the inverse covariance of the estimates.
:func:`analyze` computes it by automatic differentiation with respect to the model's
learned parameters, in analysis coordinates (energies and matrix entries in kT,
positive parameters as ``log(k - bound)``), jointly with the measurement process's
parameters, which are nuisance parameters and are profiled out (Schur complement).

Two kinds of flat directions are handled:

- the gauge of each additive matrix (adding ``c`` to every letter at one position and
  ``-c`` to the offset changes nothing): exact, known in advance, and removed by
  working in the zero-mean gauge (the subspace where every position sums to zero);
- any other direction of (near-)zero curvature: found from the eigenvalues of the
  profiled, gauge-fixed Hessian (scaled to unit diagonal, so units do not matter) and
  described in words, e.g. "k_on and G_R.offset appear only as the combination
  k_on·exp(-G_R.offset): the data fix the combination, not each".

Standard errors come from the pseudo-inverse restricted to the identified directions
and are reported in natural units (delta method); a parameter with a component along
an unidentified direction gets ``inf``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn.utils import stateless

from bpm.runtime.simulate import learned_names

_NAT_PER_BIT = np.log(2.0)


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


# ---------------------------------------------------------------- coordinates


def _layout(module: torch.nn.Module) -> list[tuple[str, str, str, float | None, tuple]]:
    """(name, attribute, transform, bound, shape) of each learned parameter, in order."""
    out = []
    for name in learned_names(module):
        attr, how, bound = module._storage[name]
        out.append((name, attr, how, bound, tuple(getattr(module, attr).shape)))
    return out


def _to_analysis(value: torch.Tensor, how: str, bound) -> torch.Tensor:
    """Natural units to analysis coordinates (the log of the distance to a bound)."""
    if how == "lower":
        return torch.log(value - bound)
    if how == "upper":
        return torch.log(bound - value)
    return value


def _raw_from_analysis(z: torch.Tensor, how: str) -> torch.Tensor:
    """Analysis coordinates to the module's stored value (both are logs for bounds)."""
    return z  # stored raw == analysis coordinates for identity, lower and upper


def _natural_derivative(value: np.ndarray, how: str, bound) -> np.ndarray:
    """d(natural)/d(analysis) at the value."""
    if how == "lower":
        return value - bound
    if how == "upper":
        return -(bound - value)
    return np.ones_like(value)


def _gauge_basis(layout, module) -> np.ndarray:
    """Columns spanning the zero-mean-gauge subspace of the analysis coordinates.

    Each additive matrix position gets ``A - 1`` orthonormal contrasts (rows summing
    to zero); every other coordinate is kept as is.
    """
    blocks = []
    for name, _, _, _, shape in layout:
        size = int(np.prod(shape)) if shape else 1
        if name in module.site_energies and len(shape) == 2:
            width, letters = shape
            contrasts = _contrasts(letters)  # [A, A-1]
            blocks.append(np.kron(np.eye(width), contrasts))
        else:
            blocks.append(np.eye(size))
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


# ---------------------------------------------------------------- the likelihood


def default_nll(module, measurement, x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Total negative log-likelihood of the reads in nats: ``-sum counts * log p(bin | t)``."""
    t = module(x)
    if isinstance(t, dict):
        t = t["t"] if "t" in t else next(iter(t.values()))
    return -(counts * measurement.log_probs(t)).sum()


def _data_tensors(data, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, counts)`` from a Dataset, a ``(codes, counts)`` pair or a DataFrame."""
    if hasattr(data, "codes") and hasattr(data, "counts"):
        codes, counts = data.codes, data.counts
    elif isinstance(data, tuple) and len(data) == 2:
        codes, counts = data
    else:
        from bpm.runtime.data import read_dataset

        d = read_dataset(data)
        codes, counts = d.codes, d.counts
    x = torch.as_tensor(np.asarray(codes), dtype=torch.long)
    c = torch.as_tensor(np.asarray(counts), dtype=dtype)
    return x, c


# ---------------------------------------------------------------- analysis


def hessian(
    module: torch.nn.Module,
    measurement: torch.nn.Module | None,
    data=None,
    *,
    nll: Callable | None = None,
    chunk: int = 8192,
) -> tuple[np.ndarray, np.ndarray, list, list, int]:
    """The Hessian of the total NLL over (model analysis coordinates, measurement raw).

    Returns ``(H, z0, layout, measurement_names, n_model)``; coordinates are ordered as
    the learned parameters of ``layout`` (flattened), then the measurement's. With
    ``nll`` (a function of ``(module, measurement)`` returning the total NLL in nats),
    ``data`` is unused and the Hessian is taken by plain double differentiation;
    otherwise the reads are summed in chunks of ``chunk`` rows, through the energy
    table when the module has one (see :func:`_structured_hessian`).
    """
    layout = _layout(module)
    dtype = next(module.parameters()).dtype
    params = [getattr(module, attr) for _, attr, _, _, _ in layout]
    m_named = list(measurement.named_parameters()) if measurement is not None else []
    m_names = [n for n, _ in m_named]
    m_params = [p for _, p in m_named]
    z0 = torch.cat([p.detach().reshape(-1).to(dtype) for p in params + m_params])
    n_model = sum(p.numel() for p in params)
    structured = nll is None and all(
        hasattr(module, f) for f in ("energy_table", "probabilities", "outputs")
    )
    if structured:
        x, counts = _data_tensors(data, dtype)
        H = torch.zeros(len(z0), len(z0), dtype=dtype)
        for s in range(0, len(x), chunk):
            H += _structured_hessian(
                module,
                measurement,
                layout,
                params,
                m_params,
                x[s : s + chunk],
                counts[s : s + chunk],
            )
    else:
        H = _plain_hessian(module, measurement, params + m_params, data, nll, chunk, dtype)
    H = 0.5 * (H + H.T)
    return H.numpy().astype(float), z0.numpy().astype(float), layout, m_names, n_model


def _plain_hessian(module, measurement, leaves, data, nll, chunk, dtype) -> torch.Tensor:
    """Row by row double differentiation of the NLL with respect to every leaf."""
    if nll is not None:
        batches = [None]
    else:
        x, counts = _data_tensors(data, dtype)
        batches = [(x[s : s + chunk], counts[s : s + chunk]) for s in range(0, len(x), chunk)]
    dim = sum(p.numel() for p in leaves)
    H = torch.zeros(dim, dim, dtype=dtype)
    for batch in batches:
        value = (
            nll(module, measurement) if batch is None else default_nll(module, measurement, *batch)
        )
        grads = torch.autograd.grad(value, leaves, create_graph=True, allow_unused=True)
        grad = torch.cat(
            [
                (g if g is not None else torch.zeros_like(p)).reshape(-1)
                for g, p in zip(grads, leaves, strict=True)
            ]
        )
        for i in range(dim):
            if not grad[i].requires_grad:
                continue
            rows = torch.autograd.grad(grad[i], leaves, retain_graph=True, allow_unused=True)
            H[i] += torch.cat(
                [
                    (r if r is not None else torch.zeros_like(p)).reshape(-1).detach()
                    for r, p in zip(rows, leaves, strict=True)
                ]
            )
    return H


def _structured_hessian(module, measurement, layout, params, m_params, x, counts):
    """The Hessian of one chunk's NLL, through the per-sequence energy table.

    The NLL is ``sum_n l(E_n, w)``: ``E_n`` the sequence's energies (linear in the
    energy parameters: matrices, offsets, scalar energies) and ``w`` the parameters used
    after the energies (rates, scales) and the measurement's. Differentiating ``l`` by
    its few per-sequence inputs and chaining with the energy table's Jacobian ``J_n``
    gives ``sum J^T l_EE J``, ``sum J^T l_Ew`` and ``l_ww`` with a few dozen backward
    passes instead of one per parameter.
    """
    dtype = params[0].dtype
    energy_attrs = _energy_attrs(module)
    is_energy = [attr in energy_attrs for _, attr, _, _, _ in layout]
    w_params = [p for p, e in zip(params, is_energy, strict=True) if not e] + list(m_params)
    sizes = [p.numel() for p in params] + [p.numel() for p in m_params]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    e_index = np.concatenate(
        [np.arange(offsets[k], offsets[k + 1]) for k, e in enumerate(is_energy) if e] or [[]]
    ).astype(int)
    w_index = np.concatenate(
        [np.arange(offsets[k], offsets[k + 1]) for k, e in enumerate(is_energy) if not e]
        + [
            np.arange(offsets[len(params) + k], offsets[len(params) + k + 1])
            for k in range(len(m_params))
        ]
        or [[]]
    ).astype(int)
    dim = int(offsets[-1])
    H = torch.zeros(dim, dim, dtype=dtype)

    # Per-sequence second derivatives of l with respect to (E_n, w).
    with torch.no_grad():
        E0 = module.energy_table(x)
    n, k = E0.shape
    E = E0.detach().clone().requires_grad_(True)
    t = module.outputs(E, module.probabilities(E))
    if isinstance(t, dict):
        t = t["t"] if "t" in t else next(iter(t.values()))
    value = -(counts * measurement.log_probs(t)).sum()
    leaves = [E] + w_params
    grads = torch.autograd.grad(value, leaves, create_graph=True, allow_unused=True)
    g_E = grads[0]
    g_w = (
        torch.cat(
            [
                (g if g is not None else torch.zeros_like(p)).reshape(-1)
                for g, p in zip(grads[1:], w_params, strict=True)
            ]
        )
        if w_params
        else torch.zeros(0, dtype=dtype)
    )
    d_w = len(g_w)
    h_EE = torch.zeros(n, k, k, dtype=dtype)
    h_Ew = torch.zeros(n, k, d_w, dtype=dtype)
    H_ww = torch.zeros(d_w, d_w, dtype=dtype)
    for j in range(k):
        if not g_E.requires_grad:
            break
        rows = torch.autograd.grad(g_E[:, j].sum(), [E], retain_graph=True, allow_unused=True)
        if rows[0] is not None:
            h_EE[:, j, :] = rows[0].detach()
    for q in range(d_w):
        if not g_w[q].requires_grad:
            continue
        rows = torch.autograd.grad(g_w[q], leaves, retain_graph=True, allow_unused=True)
        if rows[0] is not None:
            h_Ew[:, :, q] = rows[0].detach()
        H_ww[q] = torch.cat(
            [
                (r if r is not None else torch.zeros_like(p)).reshape(-1).detach()
                for r, p in zip(rows[1:], w_params, strict=True)
            ]
        )

    # The energy table's Jacobian (it is linear in the energy parameters): [n, k, d_e].
    J = _energy_jacobian(module, layout, is_energy, x)
    cols = [torch.nonzero(J[:, j, :].abs().sum(0) > 0).flatten() for j in range(k)]
    d_e = J.shape[2]
    H_ee = torch.zeros(d_e, d_e, dtype=dtype)
    H_ew = torch.zeros(d_e, d_w, dtype=dtype)
    for a in range(k):
        Ja = J[:, a, cols[a]]
        if Ja.shape[1] == 0:
            continue
        H_ew[cols[a]] += Ja.T @ h_Ew[:, a, :]
        for b in range(k):
            Jb = J[:, b, cols[b]]
            if Jb.shape[1] == 0:
                continue
            block = (Ja * h_EE[:, a, b, None]).T @ Jb
            H_ee[cols[a][:, None], cols[b][None, :]] += block
    ei = torch.as_tensor(e_index, dtype=torch.long)
    wi = torch.as_tensor(w_index, dtype=torch.long)
    H[ei[:, None], ei[None, :]] = H_ee
    H[ei[:, None], wi[None, :]] = H_ew
    H[wi[:, None], ei[None, :]] = H_ew.T
    H[wi[:, None], wi[None, :]] = H_ww
    return H


def _energy_attrs(module) -> set[str]:
    """Attributes of learned parameters that feed the energy table (matrices, energies)."""
    names = set(getattr(module, "energy_names", ())) | set(module.site_energies)
    return {attr for key, (attr, _, _) in module._storage.items() if key.split(".")[0] in names}


def _energy_jacobian(module, layout, is_energy, x) -> torch.Tensor:
    """d energy_table(x) / d (energy parameters, flattened in layout order): [n, k, d_e]."""
    attrs = [attr for (_, attr, _, _, _), e in zip(layout, is_energy, strict=True) if e]
    base = {a: getattr(module, a).detach() for a in attrs}
    sizes = [base[a].numel() for a in attrs]

    def table(flat):
        parts = torch.split(flat, sizes)
        values = {a: p.reshape(base[a].shape) for a, p in zip(attrs, parts, strict=True)}
        with stateless._reparametrize_module(module, values):
            return module.energy_table(x)

    flat0 = torch.cat([base[a].reshape(-1) for a in attrs])
    with torch.no_grad():
        zero = table(torch.zeros_like(flat0))
        # Linear in the parameters: column i is table(e_i) - table(0); batch the unit vectors.
        cols = []
        eye = torch.eye(len(flat0), dtype=flat0.dtype)
        for i in range(len(flat0)):
            cols.append(table(eye[i]) - zero)
    return torch.stack(cols, dim=2)


def analyze(
    module: torch.nn.Module,
    measurement: torch.nn.Module | None = None,
    data=None,
    *,
    nll: Callable | None = None,
    rel_tol: float = 1e-7,
    involvement: float = 0.05,
    threads: int | None = 1,
) -> Uncertainty:
    """Standard errors of every learned parameter and the directions the data leave free.

    ``module`` and ``measurement`` hold the fitted values (the optimum); ``data`` is a
    :class:`bpm.runtime.data.Dataset`, a ``(codes, counts)`` pair or a table, whose
    reads make the total NLL (``default_nll``); or pass ``nll(module, measurement)``
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
        H, z0, layout, m_names, n_model = hessian(module, measurement, data, nll=nll)
    finally:
        torch.set_num_threads(old_threads)
    Q = _gauge_basis(layout, module)  # [n_model, k]: zero-mean gauge subspace
    Hzz = H[:n_model, :n_model]
    Hzp = H[:n_model, n_model:]
    Hpp = H[n_model:, n_model:]
    notes = []
    profile = Hzz
    if Hpp.size:
        curvature = np.linalg.eigvalsh(0.5 * (Hpp + Hpp.T))
        downward = int((curvature < -1e-6 * max(float(curvature.max()), 1e-300)).sum())
        if downward:
            # Profiling through a saddle of the nuisance parameters is meaningless (the
            # Schur complement can turn negative): condition on them instead, and say so.
            notes.append(
                f"the measurement process is not at a minimum (the likelihood curves "
                f"downward along {downward} direction(s) of its parameters), so the "
                "standard errors are conditional on its fitted values, not profiled "
                "(they understate the uncertainty); refit to convergence for profiled ones"
            )
        else:
            profile = Hzz - Hzp @ _pinv_sym(Hpp, 1e-12) @ Hzp.T
    P = Q.T @ profile @ Q
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

    k_names = _k_names(layout, module)
    alone = np.diag(Q.T @ Hzz @ Q)
    if negative.any():
        names = _involved(evecs[:, negative], k_names, involvement)
        notes.append(
            f"the likelihood curves downward along {int(negative.sum())} direction(s) "
            f"involving {_join(names)}: the fit has not reached a minimum, so these "
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
    free_names = _names_with(free, layout)
    messages = _describe(
        evecs[:, null], k_names, alone, layout, involvement, measurement, free_names
    )
    standard_errors = _standard_errors(cov, free, unstable, z0[:n_model], layout)
    null_z = Q @ (evecs[:, null] * scale[:, None])
    n_reads = float(_data_tensors(data, torch.float64)[1].sum()) if data is not None else np.nan
    return Uncertainty(
        standard_errors=standard_errors,
        unidentified=messages,
        coordinates=_coordinate_names(layout),
        covariance=cov,
        eigenvalues=evals,
        null_directions=null_z,
        n_reads=n_reads,
        notes=notes,
    )


def _names_with(mask, layout) -> list[str]:
    """The learned parameters with at least one coordinate set in ``mask`` (z order)."""
    out, k = [], 0
    for name, _, _, _, shape in layout:
        size = int(np.prod(shape)) if shape else 1
        if mask[k : k + size].any():
            out.append(name)
        k += size
    return out


def _k_names(layout, module) -> list[str]:
    """The parameter name of each gauge-fixed coordinate (a matrix gives ``w * (A - 1)``)."""
    out = []
    for name, _, _, _, shape in layout:
        size = int(np.prod(shape)) if shape else 1
        if name in module.site_energies and len(shape) == 2:
            size = shape[0] * (shape[1] - 1)
        out += [name] * size
    return out


def _involved(vectors, k_names, involvement) -> list[str]:
    proj = vectors @ vectors.T
    order = list(dict.fromkeys(k_names))
    index = {n: [i for i, c in enumerate(k_names) if c == n] for n in order}
    return [n for n in order if float(np.trace(proj[np.ix_(index[n], index[n])])) > involvement]


def _pinv_sym(M: np.ndarray, rel_tol: float) -> np.ndarray:
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


def _coordinate_names(layout) -> list[tuple[str, tuple[int, ...]]]:
    out = []
    for name, _, _, _, shape in layout:
        if shape:
            out += [(name, idx) for idx in np.ndindex(*shape)]
        else:
            out.append((name, ()))
    return out


def _standard_errors(cov, free, unstable, z0, layout) -> dict[str, float | np.ndarray]:
    """Natural-unit standard errors; ``inf`` where unidentified, ``nan`` where unstable."""
    variance = np.clip(np.diag(cov), 0.0, None)
    out = {}
    k = 0
    for name, _, how, bound, shape in layout:
        size = int(np.prod(shape)) if shape else 1
        part = slice(k, k + size)
        natural = _natural_from_analysis(z0[part], how, bound)
        se = np.abs(_natural_derivative(natural, how, bound)) * np.sqrt(variance[part])
        se = np.where(free[part], np.inf, se)
        se = np.where(unstable[part], np.nan, se)
        out[name] = se.reshape(shape) if shape else float(se[0])
        k += size
    return out


def _natural_from_analysis(z, how, bound):
    if how == "lower":
        return bound + np.exp(z)
    if how == "upper":
        return bound - np.exp(z)
    return z


# ---------------------------------------------------------------- words


def _describe(null, k_names, alone, layout, involvement, measurement, free=()) -> list[str]:
    """One message per group of parameters tied together by unidentified directions.

    ``null`` holds orthonormal flat directions in the scaled, gauge-fixed coordinates;
    their projector does not depend on which basis the eigensolver returned, so the
    groups and counts below do not either. Every name in ``free`` (the parameters whose
    standard error is reported as ``inf``) appears in some message.
    """
    if null.shape[1] == 0:
        return []
    proj = null @ null.T
    order = list(dict.fromkeys(k_names))
    index = {n: [i for i, c in enumerate(k_names) if c == n] for n in order}
    weight = {n: float(np.trace(proj[np.ix_(ix, ix)])) for n, ix in index.items()}
    involved = [n for n in order if weight[n] > involvement or n in free]
    link = {
        (a, b): float(np.abs(proj[np.ix_(index[a], index[b])]).max())
        for a in involved
        for b in involved
    }
    groups: list[list[str]] = []
    for n in involved:
        joined = [g for g in groups if any(link[(n, m)] > involvement / 2 for m in g)]
        merged = [n] + [m for g in joined for m in g]
        groups = [g for g in groups if g not in joined] + [sorted(merged, key=order.index)]
    kinds = {name: how for name, _, how, _, _ in layout}
    messages = []
    for group in sorted(groups, key=lambda g: order.index(g[0])):
        ix = [i for n in group for i in index[n]]
        # Flat directions lying (mostly) on this group's coordinates.
        sv = np.linalg.svd(null[ix, :], compute_uv=False)
        dims = max(int((sv > np.sqrt(0.5)).sum()), 1)
        if len(group) == 1:
            absorbed = measurement is not None and float(np.max(alone[ix])) > 0
            messages.append(_single(group[0], absorbed, kinds[group[0]]))
            continue
        messages.append(_message(group, proj[np.ix_(ix, ix)], ix, k_names, kinds, dims))
    return messages


def _single(name: str, absorbed: bool, kind: str = "identity") -> str:
    if absorbed and kind in ("lower", "upper"):
        return (
            f"{name} is not identified: it only sets the overall scale of t, which is "
            "absorbed by the measurement process (only t relative to the sort bins "
            "matters), so the data do not fix it"
        )
    if absorbed:
        return (
            f"{name} is not identified: a change in it is absorbed by the measurement "
            "process (only t relative to the sort bins matters), so the data do not fix it"
        )
    return f"{name} is not identified: it does not change the likelihood of these data"


def _message(group, sub, ix, k_names, kinds, dims) -> str:
    _, v = np.linalg.eigh(sub)
    direction = v[:, -1]
    if len(group) == 2 and dims == 1:
        a, b = group
        va = _component(direction, ix, k_names, a)
        vb = _component(direction, ix, k_names, b)
        if va is not None and vb is not None:
            combo = _combination(a, va, kinds[a], b, vb, kinds[b])
            return f"{a} and {b} appear only as {combo}: the data fix the combination, not each"
    if dims == 1:
        move = _movement(group, direction, ix, k_names, kinds)
        return (
            f"{_join(group)} are not separately identified: the likelihood does not change "
            f"when they move together ({move}), so the data fix only the combinations "
            "left unchanged by that joint move"
        )
    return (
        f"{_join(group)} are not separately identified: the likelihood does not change "
        f"along {dims} independent directions of joint change in these parameters, so "
        "the data fix only the combinations left unchanged by those moves"
    )


def _movement(group, direction, ix, k_names, kinds) -> str:
    """A flat direction in words: ``k_on ×e^s, G_R.offset +1·s`` (largest part = 1)."""
    parts = []
    biggest = float(np.max(np.abs(direction))) or 1.0
    for name in group:
        value = _component(direction, ix, k_names, name)
        if value is None:
            parts.append(f"the entries of {name} shift")
            continue
        c = value / biggest
        if abs(c) < 0.05:
            continue
        r = _nice(c)
        if kinds[name] in ("lower", "upper"):
            parts.append(f"{name} ×e^({r}·s)")
        else:
            parts.append(f"{name} {'+' if c >= 0 else '-'}{_nice(abs(c))}·s kT")
    return ", ".join(parts)


def _component(direction, ix, names, name) -> float | None:
    """The null direction's component on a scalar parameter (None for a matrix)."""
    positions = [k for k, i in enumerate(ix) if names[i] == name]
    if len(positions) != 1:
        return None
    return float(direction[positions[0]])


def _combination(a, va, kind_a, b, vb, kind_b) -> str:
    """The combination left unchanged by moving along (va, vb) in analysis coordinates.

    Invariant: ``vb * z_a - va * z_b``. Logs of rates print as products and powers,
    energies as ``exp(-E)`` factors next to a rate, or as sums and differences.
    """
    ca, cb = vb, -va
    if abs(ca) < 0.9 * abs(cb):
        a, b, ca, cb, kind_a, kind_b = b, a, cb, ca, kind_b, kind_a
    ratio = cb / ca
    log_a = kind_a in ("lower", "upper")
    log_b = kind_b in ("lower", "upper")
    r = _nice(ratio)
    if log_a and log_b:
        if r == "1":
            return f"their product {a}·{b}"
        if r == "-1":
            return f"their ratio {a}/{b}"
        return f"the combination {a}·{b}^{r}"
    if log_a and not log_b:
        # z_a + ratio * E_b  ->  a * exp(ratio * E_b)
        power = _nice(-ratio)
        factor = f"exp(-{b})" if power == "1" else f"exp(-{power}·{b})"
        return f"the combination {a}·{factor}"
    if log_b and not log_a:
        # z_b + E_a / ratio  ->  b * exp(E_a / ratio)
        power = _nice(-1.0 / ratio) if ratio else "0"
        factor = f"exp(-{a})" if power == "1" else f"exp(-{power}·{a})"
        return f"the combination {b}·{factor}"
    if r == "1":
        return f"their sum {a} + {b}"
    if r == "-1":
        return f"their difference {a} - {b}"
    return f"the combination {a} + {r}·{b}"


def _nice(x: float) -> str:
    for whole in range(-4, 5):
        if whole and abs(x - whole) < 0.05 * max(1.0, abs(whole)):
            return str(whole)
    return f"{x:.2f}"


def _join(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
