"""The Hessian of a fit's NLL through the module's per-sequence energy table.

The NLL is ``sum_n l(E_n, w)``: ``E_n`` the sequence's energies (linear in the energy
parameters: matrices, offsets, scalar energies) and ``w`` the parameters used after the
energies (rates, scales) and the measurement's. Differentiating ``l`` by its few
per-sequence inputs and chaining with the energy table's Jacobian ``J_n`` gives
``sum J^T l_EE J``, ``sum J^T l_Ew`` and ``l_ww`` with a few dozen backward passes
instead of one per parameter. ``J`` depends on the sequences only, so a Newton finish
(:mod:`bpm.runtime.newton`) keeps it between its iterations (``keep=True``).

Coordinates are those of :func:`bpm.runtime.hessian.hessian`: the learned parameters
of ``slots`` flattened in layout order, then the measurement's.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn.utils import stateless

from bpm.runtime.contract import SITE_PARTS, select_output
from bpm.runtime.sources import column_major

#: The stored Jacobians of a kept :class:`EnergyHessian` may take at most this many bytes.
KEEP_BYTES = 512 << 20


def has_energy_table(module) -> bool:
    """Whether the module offers the energy table the structured Hessian goes through."""
    return all(hasattr(module, f) for f in ("energy_table", "probabilities", "outputs"))


class EnergyHessian:
    """The Hessian of the total NLL of the sequences ``x`` (codes ``[N, L]``) over the
    coordinates of ``slots`` (learned, layout order) and the measurement's parameters,
    summed in chunks of ``chunk`` rows. With ``keep`` each chunk's energy-table Jacobian
    is computed once and kept; else once per call."""

    def __init__(self, module, slots, x: torch.Tensor, *, chunk: int = 8192, keep=False):
        self.slots = slots
        self.is_energy = [slot.kind in SITE_PARTS or slot.kind == "energy" for slot in slots]
        self.chunks = [column_major(x[s : s + chunk]) for s in range(0, len(x), chunk)]
        self.bounds = [(s, min(s + chunk, len(x))) for s in range(0, len(x), chunk)]
        self.keep = keep
        self.kept: dict[int, list] = {}

    def __call__(self, module, measurement, counts: torch.Tensor, output: str) -> torch.Tensor:
        """The Hessian (float of the module, ``[dim, dim]``) at the current parameters;
        ``counts`` are the observations of every row of ``x``."""
        return self.derivatives(module, measurement, counts, output)[2]

    def derivatives(self, module, measurement, counts, output):
        """``(nll, gradient, Hessian)`` of the total NLL (nats) at the current parameters,
        the gradient through the same energy table (so no gradient hook on the module's
        tensors applies to it)."""
        params = [getattr(module, slot.attribute) for slot in self.slots]
        m_params = list(measurement.parameters())
        dim = sum(p.numel() for p in params) + sum(p.numel() for p in m_params)
        dtype = params[0].dtype
        value, g, H = 0.0, torch.zeros(dim, dtype=dtype), torch.zeros(dim, dim, dtype=dtype)
        for i, (x, (s, e)) in enumerate(zip(self.chunks, self.bounds, strict=True)):
            blocks = self.kept.get(i)
            if blocks is None:
                blocks = jacobian_blocks(module, self.slots, self.is_energy, x)
                if self.keep:
                    self.kept[i] = blocks
            part = self._chunk(module, measurement, params, m_params, x, counts[s:e], output,
                               blocks)  # fmt: skip
            value, g, H = value + part[0], g + part[1], H + part[2]
        return value, g, 0.5 * (H + H.T)

    def _chunk(self, module, measurement, params, m_params, x, counts, output, blocks):
        dtype = params[0].dtype
        is_energy = self.is_energy
        w_params = [p for p, e in zip(params, is_energy, strict=True) if not e] + m_params
        sizes = [p.numel() for p in params] + [p.numel() for p in m_params]
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        ranges = [np.arange(offsets[k], offsets[k + 1]) for k in range(len(sizes))]
        e_index = np.concatenate(
            [r for r, e in zip(ranges[: len(params)], is_energy, strict=True) if e] or [[]]
        )
        w_index = np.concatenate(
            [r for r, e in zip(ranges[: len(params)], is_energy, strict=True) if not e]
            + ranges[len(params) :]
            or [[]]
        )
        value, g_E, g_w, (h_EE, h_Ew, H_ww) = _per_sequence_derivatives(
            module, measurement, w_params, x, counts, output
        )
        d_e, d_w = len(e_index), len(w_index)
        ei = torch.as_tensor(e_index.astype(int), dtype=torch.long)
        wi = torch.as_tensor(w_index.astype(int), dtype=torch.long)
        g = torch.zeros(int(offsets[-1]), dtype=dtype)
        g_e = torch.zeros(d_e, dtype=dtype)
        for a, (cols_a, Ja) in enumerate(blocks):
            g_e[cols_a] += Ja.T @ g_E[:, a]
        g[ei], g[wi] = g_e, g_w
        H_ee = torch.zeros(d_e, d_e, dtype=dtype)
        H_ew = torch.zeros(d_e, d_w, dtype=dtype)
        for a, (cols_a, Ja) in enumerate(blocks):
            if Ja.shape[1] == 0:
                continue
            H_ew[cols_a] += Ja.T @ h_Ew[:, a, :]
            for b, (cols_b, Jb) in enumerate(blocks[a:], start=a):
                if Jb.shape[1] == 0:
                    continue
                block = (Ja * h_EE[:, a, b, None]).T @ Jb
                H_ee[cols_a[:, None], cols_b[None, :]] += block
                if b != a:  # h_EE is symmetric in (a, b)
                    H_ee[cols_b[:, None], cols_a[None, :]] += block.T
        H = torch.zeros(int(offsets[-1]), int(offsets[-1]), dtype=dtype)
        H[ei[:, None], ei[None, :]] = H_ee
        H[ei[:, None], wi[None, :]] = H_ew
        H[wi[:, None], ei[None, :]] = H_ew.T
        H[wi[:, None], wi[None, :]] = H_ww
        return value, g, H


def _per_sequence_derivatives(module, measurement, w_params, x, counts, output):
    """The chunk's NLL and its derivatives with respect to each sequence's energies
    ``E_n`` and the parameters ``w``: ``(nll, g_E [n, k], g_w (summed), rows)``, ``rows``
    being ``h_EE [n, k, k], h_Ew [n, k, d_w], H_ww`` (summed)."""
    dtype = counts.dtype
    with torch.no_grad():
        E0 = module.energy_table(x)
    n, k = E0.shape
    E = E0.detach().clone().requires_grad_(True)
    t = select_output(module.outputs(E, module.probabilities(E)), output)
    value = -measurement.log_likelihood(t, counts).sum()
    leaves = [E, *w_params]
    grads = torch.autograd.grad(value, leaves, create_graph=True, allow_unused=True)
    g_E = grads[0] if grads[0] is not None else torch.zeros_like(E)
    g_w = flat_gradient(grads[1:], w_params) if w_params else torch.zeros(0, dtype=dtype)
    rows = _second_rows(g_E, g_w, leaves, w_params)
    return float(value.detach()), g_E.detach(), g_w.detach(), rows


def flat_gradient(grads, leaves) -> torch.Tensor:
    """Gradients with respect to ``leaves`` (None where a leaf is unused) as one vector,
    zeros where unused."""
    return torch.cat(
        [
            (g if g is not None else torch.zeros_like(p)).reshape(-1)
            for g, p in zip(grads, leaves, strict=True)
        ]
    )


def _second_rows(g_E, g_w, leaves, w_params):
    """``h_EE``, ``h_Ew`` and ``H_ww``: one backward pass for each column of ``g_E``
    (summed over the rows: each row's energies only reach its own NLL) and each entry of
    ``g_w``. (A batched pass, ``is_grads_batched``, took twice as long on lac.)"""
    E = leaves[0]
    n, k = E.shape
    d_w = len(g_w)
    h_EE = torch.zeros(n, k, k, dtype=E.dtype)
    h_Ew = torch.zeros(n, k, d_w, dtype=E.dtype)
    H_ww = torch.zeros(d_w, d_w, dtype=E.dtype)
    for j in range(k):
        if not g_E.requires_grad:
            break
        (row,) = torch.autograd.grad(g_E[:, j].sum(), [E], retain_graph=True, allow_unused=True)
        if row is not None:
            h_EE[:, j, :] = row.detach()
    for q in range(d_w):
        if not g_w[q].requires_grad:
            continue
        rows = torch.autograd.grad(g_w[q], leaves, retain_graph=True, allow_unused=True)
        if rows[0] is not None:
            h_Ew[:, :, q] = rows[0].detach()
        H_ww[q] = flat_gradient(rows[1:], w_params).detach()
    return h_EE, h_Ew, H_ww


def jacobian_blocks(module, slots, is_energy, x) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """For each energy-table column ``a``: the energy parameters it depends on (indices
    into their flattened layout order) and ``d E[:, a] / d those``, ``[n, used]``.

    The table is linear in the energy parameters, so column ``i`` of the Jacobian is
    ``table(e_i) - table(0)`` (codes laid out column after column: no copy inside the
    table). An additive matrix takes one table per position instead of one per entry
    (:func:`_matrix_columns`).
    """
    attrs = [slot.attribute for slot, e in zip(slots, is_energy, strict=True) if e]
    energy_slots = [slot for slot, e in zip(slots, is_energy, strict=True) if e]
    base = {a: getattr(module, a).detach() for a in attrs}
    x = column_major(x)

    def table(values: dict) -> torch.Tensor:
        full = {a: values.get(a, torch.zeros_like(base[a])) for a in attrs}
        with stateless._reparametrize_module(module, full):
            return module.energy_table(x)

    with torch.no_grad():
        zero = table({})
        parts = []
        for slot in energy_slots:
            cols = _matrix_columns(table, zero, slot, base[slot.attribute])
            if cols is None:
                unit = torch.zeros_like(base[slot.attribute]).reshape(-1)
                cols = []
                for i in range(len(unit)):
                    unit.zero_()
                    unit[i] = 1.0
                    cols.append(table({slot.attribute: unit.reshape(base[slot.attribute].shape)})
                                - zero)  # fmt: skip
                cols = torch.stack(cols, dim=2)
            parts.append(cols)
        J = torch.cat(parts, dim=2)
    blocks = []
    for a in range(J.shape[1]):
        used = torch.nonzero(J[:, a, :].abs().sum(0) > 0).flatten()
        blocks.append((used, J[:, a, used].contiguous()))
    return blocks


def _matrix_columns(table, zero, slot, value) -> torch.Tensor | None:
    """The Jacobian columns ``[n, k, w * A]`` of an additive matrix ``[w, A]``, one table
    per position: with row ``p`` set to ``2**letter`` and the rest zero, each energy that
    reads the position once gets ``2**(its letter there)``. Checked against the table at
    random values; None (take one table per entry) for any other slot or a failed check."""
    if slot.kind != "matrix" or value.dim() != 2:
        return None
    width, letters = value.shape
    powers = 2.0 ** torch.arange(letters, dtype=value.dtype)
    rows = []
    for p in range(width):
        probe = torch.zeros_like(value)
        probe[p] = powers
        v = table({slot.attribute: probe}) - zero  # [n, k]
        level = torch.log2(v.clamp(min=1.0)).round()
        onehot = (level[..., None] == torch.arange(letters, dtype=value.dtype)) & (v[..., None] > 0)
        rows.append(onehot.to(value.dtype))
    cols = torch.cat(rows, dim=2)  # [n, k, w * A], position-major as the matrix is stored
    check = torch.randn(value.shape, dtype=value.dtype, generator=torch.Generator().manual_seed(0))
    expected = table({slot.attribute: check}) - zero
    if not torch.allclose(cols @ check.reshape(-1), expected, rtol=1e-9, atol=1e-9):
        return None
    return cols
