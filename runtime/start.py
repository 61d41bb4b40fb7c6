"""Where a fit starts: the module's parameters and the measurement process's.

The module starts where the model file says (:func:`bpm.runtime.contract.initial_values`:
``init`` and fixed values as written, the documented defaults by declared kind), then
the caller's ``init`` overrides; with ``from_data`` the site matrices start from the
reads instead. The measurement process starts centred on the starting outputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from bpm.compiler.errors import BpmError

from . import contract
from .measurement import OrdinalMeasurement
from .measurement_affine import AffineMeasurement


def start_module(
    module: nn.Module,
    init: Mapping[str, float] | None = None,
    *,
    codes: np.ndarray | None = None,
    counts: np.ndarray | None = None,
    spread: float = 0.5,
    consensus_energy: Mapping[str, float] | None = None,
) -> None:
    """Set ``module``'s starting values: the model file's, then (with ``codes`` and
    ``counts``) matrices from the data, then ``init`` (natural units, by ``.bpm`` name)."""
    known = module.get_params()
    unknown = sorted(set(init or {}) - set(known))
    if unknown:
        raise BpmError(
            f"init names {unknown}, not parameters of the model (parameters: {sorted(known)})"
        )
    start = contract.initial_values(module)
    module.set_params(start)
    if codes is not None and counts is not None:
        start = enrichment_start(module, codes, counts, spread, consensus_energy)
        module.set_params(start)
    chosen = {
        name: torch.as_tensor(value, dtype=torch.float32) for name, value in (init or {}).items()
    }
    try:
        module.set_params(chosen)
    except ValueError as error:
        raise BpmError(f"init: {error}") from None


def enrichment_start(module, codes, counts, spread=0.5, consensus_energy=None) -> dict:
    """Matrices started from the data: each letter's mean bin among the reads carrying it.

    A letter enriched in bright bins gets a lower energy if binding raises ``t`` (the
    sign is read off the model at the starting point), higher if it lowers it; each
    matrix is scaled to ``spread`` kT per position, and its offset set so that the
    consensus sequence keeps the energy it had (or ``consensus_energy[name]`` kT).
    """
    counts = np.asarray(counts, dtype=float)
    reads = counts.sum(1)
    score = (counts * np.arange(counts.shape[1])).sum(1) / np.maximum(reads, 1e-12)
    params = module.get_params()
    letters = len(module.alphabet)
    out = {}
    for name, info in contract.site_energies(module).items():
        slot = contract.layout(module)[name]
        if info.get("kind") != "matrix" or info.get("revcomp") or not slot.learned:
            continue
        width = info["stop"] - info["start"]
        window = np.asarray(codes[:, info["start"] : info["stop"]], dtype=np.int64)
        onehot = np.zeros((len(codes), width, letters))
        np.put_along_axis(onehot, window[:, :, None], 1.0, axis=2)
        weight = onehot * reads[:, None, None]
        mean = (weight * score[:, None, None]).sum(0) / np.maximum(weight.sum(0), 1e-9)
        mean = np.where(weight.sum(0) > 0, mean, np.average(score, weights=reads))
        diff = mean - mean.mean(1, keepdims=True)
        size = diff.std(1).mean()
        if not np.isfinite(size) or size == 0:
            continue
        matrix = -binding_raises_t(module, name, codes) * diff * (spread / size)
        best = contract.consensus(codes, info["start"], info["stop"], letters)
        rows = np.arange(width)
        old = float(params[name].numpy()[rows, best].sum()) + float(params[f"{name}.offset"])
        target = (consensus_energy or {}).get(name)
        out[name] = torch.tensor(matrix, dtype=torch.float32)
        out[f"{name}.offset"] = torch.tensor(
            float((old if target is None else target) - matrix[rows, best].sum())
        )
    return out


def binding_raises_t(module, name: str, codes: np.ndarray, output: str | None = None) -> float:
    """+1 if lowering site energy ``name`` raises the mean output, else -1."""
    x = torch.from_numpy(np.asarray(codes[:2000], dtype=np.int64))
    chosen = contract.choose_output(module, output)
    offset = module.get_params()[f"{name}.offset"]
    with torch.no_grad():
        base = float(contract.select_output(module(x), chosen).mean())
        module.set_params({f"{name}.offset": offset - 0.5})
        lower = float(contract.select_output(module(x), chosen).mean())
        module.set_params({f"{name}.offset": offset})
    return 1.0 if lower >= base else -1.0


def pin_consensus(module, codes: np.ndarray) -> list:
    """Freeze each learned matrix's consensus letters (gauge-redundant with the offset).

    Adding c to every letter at a position and -c to the offset changes nothing, so
    fixing one letter per position loses nothing; with the consensus letters fixed the
    consensus sequence's energy moves only through the offset, one step at a time,
    instead of drifting through every position at once under Adam's per-entry steps.
    Returns the gradient hooks (call ``.remove()`` on each when done).
    """
    hooks = []
    letters = len(module.alphabet)
    for name, info in contract.site_energies(module).items():
        tensor = contract.stored(module, name)
        if info.get("kind") != "matrix" or not tensor.requires_grad:
            continue
        best = contract.consensus(codes, info["start"], info["stop"], letters)
        mask = torch.ones(tensor.shape, device=tensor.device)
        mask[torch.arange(len(best)), torch.from_numpy(best)] = 0.0
        hooks.append(tensor.register_hook(lambda g, mask=mask: g * mask))
    return hooks


def hold(module: nn.Module, names) -> list[torch.Tensor]:
    """Stop training the tensors that store ``names`` (for ``fix``); returns them, to be
    released with ``requires_grad_(True)``."""
    known = contract.layout(module)
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise BpmError(f"fix names {unknown}, not parameters of the model ({sorted(known)})")
    held = [contract.stored(module, name) for name in names]
    held = [t for t in held if isinstance(t, nn.Parameter) and t.requires_grad]
    for tensor in held:
        tensor.requires_grad_(False)
    return held


def start_measurement(
    t0: torch.Tensor,
    bin_totals: torch.Tensor,
    *,
    hidden: int,
    transform: str,
    link: str = "flexible",
    gates=None,
    learn_slope: bool = False,
) -> nn.Module:
    """The measurement process, started on the starting outputs ``t0`` (``[N]``) and the
    training reads per bin ``bin_totals``; ``link`` (``flexible`` or ``affine``),
    ``gates`` and ``learn_slope`` as in :class:`~bpm.runtime.options.FitOptions`.

    ``flexible``: an :class:`OrdinalMeasurement` centred on ``t0``, cutpoints from the
    reads' cumulative bin fractions; ``transform="auto"`` is ``log`` when every ``t0``
    is positive. ``affine``: an :class:`AffineMeasurement` (it reads ``log(t + f)``, so
    ``t0`` must be positive) whose offset and noise make the predicted bin fractions
    match the reads (:meth:`AffineMeasurement.start_on`).
    """
    if link == "affine":
        return start_affine(t0, bin_totals, gates=gates, learn_slope=learn_slope)
    if link != "flexible":
        raise BpmError(f"link must be flexible or affine, not {link!r}")
    measurement = OrdinalMeasurement(
        len(bin_totals), hidden=hidden, **link_standardization(t0, transform)
    ).to(t0.device)
    measurement.start_on(bin_totals.to(t0.device).float())
    return measurement


def link_standardization(t0: torch.Tensor, transform: str) -> dict:
    """The flexible link's ``transform``, ``center`` and ``scale`` for starting outputs
    ``t0``: ``auto`` is ``log`` when every ``t0`` is positive; ``u`` is centred on the
    starting outputs and scaled by their spread, at least one (about one kT: the link's
    input grows as the energies do)."""
    if transform == "auto":
        transform = "log" if bool((t0 > 0).all()) else "identity"
    u0 = torch.log(t0) if transform == "log" else t0
    return {"transform": transform, "center": float(u0.mean()), "scale": max(float(u0.std()), 1.0)}


def start_affine(t0: torch.Tensor, bin_totals: torch.Tensor, *, gates=None, learn_slope=False):
    """An :class:`AffineMeasurement` started on ``t0`` and the reads per bin (see
    :func:`start_measurement`); the floor starts at 5% of a typical ``t0``."""
    n_bins = len(bin_totals)
    if gates is not None and len(gates) != n_bins - 1:
        raise BpmError(
            f"the data have {n_bins} bins, so the sort has {n_bins - 1} inner gates; "
            f"{len(gates)} gates were given ({list(gates)})"
        )
    if not bool(torch.isfinite(t0).all()) or bool((t0 < 0).any()):
        raise BpmError(
            "the affine link reads log(t + floor), so it needs a non-negative output t; "
            "this model's starting output is negative somewhere (use --link flexible)"
        )
    positive = t0[t0 > 0]
    center = float(torch.log(positive).mean()) if len(positive) else 0.0
    measurement = AffineMeasurement(
        n_bins, gates=gates, learn_slope=learn_slope, floor=math.exp(center - 3.0)
    ).to(t0.device)
    measurement.start_on(bin_totals.to(t0.device).float(), t0.float())
    return measurement
