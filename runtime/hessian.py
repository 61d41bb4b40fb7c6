"""The Hessian of a fit's total negative log-likelihood, by automatic differentiation.

Coordinates are the module's learned parameters as it stores them (energies and matrix
entries in kT, bounded parameters as the log of their distance to the bound; see
:func:`bpm.runtime.contract.to_raw`), flattened in layout order, then the measurement
process's parameters. :func:`hessian` sums the reads in chunks, through the module's
per-sequence energy table when it has one (a few dozen backward passes instead of one
per parameter), else by plain double differentiation. :mod:`bpm.runtime.uncertainty`
turns the result into standard errors and words; :func:`gradient` gives the gradient
over the same coordinates (whether the point is an optimum at all).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.nn.utils import stateless

from bpm.runtime.contract import SITE_PARTS, Slot, choose_output, layout, recording, select_output


def learned_slots(module: torch.nn.Module) -> list[Slot]:
    """The :class:`~bpm.runtime.contract.Slot` of each learned parameter, in layout order:
    the model's coordinates of the Hessian."""
    return [slot for slot in layout(module).values() if slot.learned]


def default_nll(
    module, measurement, x: torch.Tensor, counts: torch.Tensor, output: str | None = None
) -> torch.Tensor:
    """Total negative log-likelihood of the observations in nats (for reads,
    ``-sum counts * log p(bin | t)``; for any measurement its ``log_likelihood``).

    ``t`` is the output :func:`bpm.runtime.contract.choose_output` picks (``output`` if
    given, else the one named ``t``, else the only one).
    """
    with recording(module):  # in eval mode the module would record no gradients
        t = select_output(module(x), choose_output(module, output))
    return -measurement.log_likelihood(t, counts).sum()


def data_tensors(data, dtype) -> tuple[torch.Tensor, torch.Tensor]:
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


def hessian(
    module: torch.nn.Module,
    measurement: torch.nn.Module | None,
    data=None,
    *,
    nll: Callable | None = None,
    chunk: int = 8192,
    output: str | None = None,
) -> tuple[np.ndarray, np.ndarray, list[Slot], list[str], int]:
    """The Hessian of the total NLL over (model stored coordinates, measurement raw).

    Returns ``(H, z0, slots, measurement_names, n_model)``; coordinates are ordered as
    the learned parameters of ``slots`` (:func:`learned_slots`, flattened), then the
    measurement's. With ``nll`` (a function of ``(module, measurement)`` returning the
    total NLL in nats), ``data`` and ``output`` are unused and the Hessian is taken by
    plain double differentiation; otherwise the reads of output ``output`` (see
    :func:`default_nll`) are summed in chunks of ``chunk`` rows, through the energy
    table when the module has one.
    """
    slots = learned_slots(module)
    dtype = next(module.parameters()).dtype
    params = [getattr(module, slot.attribute) for slot in slots]
    m_named = list(measurement.named_parameters()) if measurement is not None else []
    m_names = [n for n, _ in m_named]
    m_params = [p for _, p in m_named]
    z0 = torch.cat([p.detach().reshape(-1).to(dtype) for p in params + m_params])
    n_model = sum(p.numel() for p in params)
    structured = nll is None and all(
        hasattr(module, f) for f in ("energy_table", "probabilities", "outputs")
    )
    if structured:
        name = choose_output(module, output)
        x, counts = data_tensors(data, dtype)
        H = torch.zeros(len(z0), len(z0), dtype=dtype)
        for s in range(0, len(x), chunk):
            H += _structured_hessian(
                module, measurement, slots, params, m_params, x[s : s + chunk],
                counts[s : s + chunk], name,
            )  # fmt: skip
    else:
        H = _plain_hessian(module, measurement, params + m_params, data, nll, chunk, dtype, output)
    H = 0.5 * (H + H.T)
    return H.numpy().astype(float), z0.numpy().astype(float), slots, m_names, n_model


def gradient(
    module: torch.nn.Module,
    measurement: torch.nn.Module | None,
    data=None,
    *,
    nll: Callable | None = None,
    chunk: int = 8192,
    output: str | None = None,
) -> np.ndarray:
    """The gradient of the total NLL (nats) over the coordinates of :func:`hessian`.

    The reads of ``data`` are summed in chunks of ``chunk`` rows (see
    :func:`default_nll`), or ``nll(module, measurement)`` is differentiated once.
    """
    slots = learned_slots(module)
    leaves = [getattr(module, slot.attribute) for slot in slots]
    leaves += list(measurement.parameters()) if measurement is not None else []
    if nll is not None:
        with recording(module):
            value = nll(module, measurement)
        return _flat(torch.autograd.grad(value, leaves, allow_unused=True), leaves).numpy()
    dtype = leaves[0].dtype
    x, counts = data_tensors(data, dtype)
    total = torch.zeros(sum(p.numel() for p in leaves), dtype=dtype)
    for s in range(0, len(x), chunk):
        value = default_nll(module, measurement, x[s : s + chunk], counts[s : s + chunk], output)
        grads = torch.autograd.grad(value, leaves, allow_unused=True)
        total += _flat(grads, leaves).detach()
    return total.numpy().astype(float)


def refit_lbfgs(module, measurement, data, iterations: int, output: str | None = None) -> int:
    """Run up to ``iterations`` L-BFGS iterations on the mean NLL of ``data``'s reads, in
    place (pass float64 modules); returns the iterations run."""
    x, counts = data_tensors(data, torch.float64)
    total = float(counts.sum())
    params = [p for p in [*module.parameters(), *measurement.parameters()] if p.requires_grad]
    opt = torch.optim.LBFGS(
        params, max_iter=iterations, history_size=50, line_search_fn="strong_wolfe",
        tolerance_grad=1e-12, tolerance_change=1e-16,
    )  # fmt: skip

    def closure():
        opt.zero_grad()
        loss = default_nll(module, measurement, x, counts, output) / total
        loss.backward()
        return loss

    opt.step(closure)
    return int(opt.state[opt._params[0]].get("n_iter", iterations))


def _flat(grads, leaves) -> torch.Tensor:
    """Gradients with respect to ``leaves`` as one vector (zeros where unused)."""
    return torch.cat(
        [
            (g if g is not None else torch.zeros_like(p)).reshape(-1)
            for g, p in zip(grads, leaves, strict=True)
        ]
    )


def _plain_hessian(module, measurement, leaves, data, nll, chunk, dtype, output) -> torch.Tensor:
    """Row by row double differentiation of the NLL with respect to every leaf."""
    if nll is not None:
        batches = [None]
    else:
        x, counts = data_tensors(data, dtype)
        batches = [(x[s : s + chunk], counts[s : s + chunk]) for s in range(0, len(x), chunk)]
    dim = sum(p.numel() for p in leaves)
    H = torch.zeros(dim, dim, dtype=dtype)
    for batch in batches:
        if batch is None:
            with recording(module):
                value = nll(module, measurement)
        else:
            value = default_nll(module, measurement, *batch, output=output)
        grad = _flat(
            torch.autograd.grad(value, leaves, create_graph=True, allow_unused=True), leaves
        )
        for i in range(dim):
            if not grad[i].requires_grad:
                continue
            rows = torch.autograd.grad(grad[i], leaves, retain_graph=True, allow_unused=True)
            H[i] += _flat(rows, leaves).detach()
    return H


def _structured_hessian(module, measurement, slots, params, m_params, x, counts, output):
    """The Hessian of one chunk's NLL, through the per-sequence energy table.

    The NLL is ``sum_n l(E_n, w)``: ``E_n`` the sequence's energies (linear in the
    energy parameters: matrices, offsets, scalar energies) and ``w`` the parameters used
    after the energies (rates, scales) and the measurement's. Differentiating ``l`` by
    its few per-sequence inputs and chaining with the energy table's Jacobian ``J_n``
    gives ``sum J^T l_EE J``, ``sum J^T l_Ew`` and ``l_ww`` with a few dozen backward
    passes instead of one per parameter.
    """
    dtype = params[0].dtype
    is_energy = [slot.kind in SITE_PARTS or slot.kind == "energy" for slot in slots]
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
    t = select_output(module.outputs(E, module.probabilities(E)), output)
    value = -measurement.log_likelihood(t, counts).sum()
    leaves = [E] + w_params
    grads = torch.autograd.grad(value, leaves, create_graph=True, allow_unused=True)
    g_E = grads[0]
    g_w = _flat(grads[1:], w_params) if w_params else torch.zeros(0, dtype=dtype)
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
        H_ww[q] = _flat(rows[1:], w_params).detach()

    # The energy table's Jacobian (it is linear in the energy parameters): [n, k, d_e].
    J = _energy_jacobian(module, slots, is_energy, x)
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


def _energy_jacobian(module, slots, is_energy, x) -> torch.Tensor:
    """d energy_table(x) / d (energy parameters, flattened in layout order): [n, k, d_e]."""
    attrs = [slot.attribute for slot, e in zip(slots, is_energy, strict=True) if e]
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
        # Linear in the parameters: column i is table(e_i) - table(0).
        cols = []
        eye = torch.eye(len(flat0), dtype=flat0.dtype)
        for i in range(len(flat0)):
            cols.append(table(eye[i]) - zero)
    return torch.stack(cols, dim=2)
