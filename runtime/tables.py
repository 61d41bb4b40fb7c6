"""A fitted module's parameters as tables: site matrices in the zero-mean gauge, scalars.

The report (summary.json, params/*.csv) and the figures (logos, error bars) both read
these; energies, the gauge and kT come from :mod:`bpm.runtime.contract`.
"""

from __future__ import annotations

import pandas as pd
from torch import nn

from . import contract


def gauge_fixed(module: nn.Module) -> dict[str, tuple[pd.DataFrame, float]]:
    """Each additive site matrix in the zero-mean gauge, in kT, with its adjusted offset.

    Rows are positions in the full sequence (``start``..``stop-1``), columns letters.
    Shifting every letter at a position by c and the offset by -c changes nothing;
    here every position averages to zero and the offset absorbs the shifts.
    """
    params = module.get_params()
    out = {}
    for name, info in contract.site_energies(module).items():
        matrix = params[name].detach().double().cpu().numpy()
        offset = float(params[f"{name}.offset"]) if f"{name}.offset" in params else 0.0
        mean = matrix.mean(axis=1, keepdims=True)
        index = pd.Index(range(info["start"], info["start"] + matrix.shape[0]), name="position")
        frame = pd.DataFrame(matrix - mean, index=index, columns=list(module.alphabet))
        out[name] = (frame, offset + float(mean.sum()))
    return out


def scalar_params(module: nn.Module) -> dict[str, float]:
    """Scalar parameters in natural units, energies also as ``<name>_kcal_per_mol``.

    Site offsets are given in the zero-mean gauge of their matrices (as in params/*.csv).
    """
    kT = contract.kT_kcal_per_mol(module)
    energies = contract.energy_names(module)
    gauged = gauge_fixed(module)
    slots = contract.layout(module)
    out: dict[str, float] = {}
    for name, value in sorted(module.get_params().items()):
        if value.ndim != 0:
            continue
        base = name.split(".")[0]
        slot = slots[name]
        if base in gauged and name == f"{base}.offset":
            number = gauged[base][1]
        elif not slot.learned and slot.init is not None and _holds(value, slot.init):
            number = float(slot.init)  # a fixed value as the file wrote it, not its float32 copy
        else:
            number = float(value)
        out[name] = number
        if base in energies:
            # 12 significant digits: kT -> kcal/mol -> kT round trips give back what was written
            out[f"{name}_kcal_per_mol"] = float(f"{number * kT:.12g}")
    return out


def _holds(value, written: float) -> bool:
    """True if a stored tensor still holds ``written`` (up to its own precision)."""
    return float(value.to(value.new_tensor(written).dtype)) == float(value.new_tensor(written))
