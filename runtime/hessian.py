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

from bpm.runtime.contract import Slot, choose_output, layout, recording, select_output
from bpm.runtime.energy_hessian import EnergyHessian, flat_gradient, has_energy_table


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
    if nll is None and has_energy_table(module):
        x, counts = data_tensors(data, dtype)
        curvature = EnergyHessian(module, slots, x, chunk=chunk)
        H = curvature(module, measurement, counts, choose_output(module, output))
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
        return flat_gradient(torch.autograd.grad(value, leaves, allow_unused=True), leaves).numpy()
    dtype = leaves[0].dtype
    x, counts = data_tensors(data, dtype)
    total = torch.zeros(sum(p.numel() for p in leaves), dtype=dtype)
    for s in range(0, len(x), chunk):
        value = default_nll(module, measurement, x[s : s + chunk], counts[s : s + chunk], output)
        grads = torch.autograd.grad(value, leaves, allow_unused=True)
        total += flat_gradient(grads, leaves).detach()
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
        grad = flat_gradient(
            torch.autograd.grad(value, leaves, create_graph=True, allow_unused=True), leaves
        )
        for i in range(dim):
            if not grad[i].requires_grad:
                continue
            rows = torch.autograd.grad(grad[i], leaves, retain_graph=True, allow_unused=True)
            H[i] += flat_gradient(rows, leaves).detach()
    return H
