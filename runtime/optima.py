"""The optima of several starts: which fits are one optimum, and each in words.

A fit record is what :mod:`bpm.runtime.multistart` collects from each start: its
``module_state`` (numpy arrays), ``metrics`` and ``start`` (``index``, ``seed``,
``init``). :func:`optima` groups them into distinct optima and keeps those within
:data:`MARGIN_BITS` of the best; :func:`optima_notes` says them in words.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import contract

#: Optima whose training NLL is within this many bits per read of the best are listed
#: in ``FitResult.optima`` and named in the notes. 0.002 bits per read is above the
#: differences between optima that the lac data did not tell apart (0.0003 to 0.0008
#: bits per read, docs/fitting.md) and, on the 10^5 lac training reads, about 140 nats
#: of log-likelihood in all.
MARGIN_BITS = 0.002
#: Two fits are the same optimum when every learned scalar energy agrees within this
#: many kT ...
SAME_ENERGY_KT = 0.3
#: ... and every site matrix correlates with the other fit's above this (zero-mean gauge).
SAME_MATRIX_R = 0.99
#: Splits as ``optima`` names them, and as a fit's metrics do.
SPLITS = (("train", "training"), ("val", "validation"), ("test", "test"))


def optima(module, fits: list[dict]) -> list[dict]:
    """The distinct optima among ``fits`` (sorted best first), those within
    :data:`MARGIN_BITS` of the best, each compared with the best fit's matrices.

    Each entry: ``name`` (in words), ``start`` (the first start that reached it) and
    ``starts`` (all that did), ``seed``, ``init`` (its start's flipped energies, kT),
    ``nll`` (train/val/test bits per read), ``delta_train_nll``, ``energies`` (each
    learned scalar energy in ``kT`` and ``kcal_per_mol``) and ``matrix_r`` (each site
    matrix's Pearson r against the best fit's, zero-mean gauge; a mirror shows r < 0).
    """
    views = [fit_view(module, fitted) for fitted in fits]
    groups: list[list[int]] = []
    for i, view in enumerate(views):
        for group in groups:
            if same_optimum(views[group[0]], view):
                group.append(i)
                break
        else:
            groups.append([i])
    best = views[0]
    kT = contract.kT_kcal_per_mol(module)
    out = []
    for group in groups:
        view, fitted = views[group[0]], fits[group[0]]
        delta = train_nll(fitted) - train_nll(fits[0])
        if not delta <= MARGIN_BITS:
            continue
        r = {n: pearson(m, best["matrices"][n]) for n, m in view["matrices"].items()}
        entry = {
            "start": fitted["start"]["index"],
            "starts": [fits[i]["start"]["index"] for i in group],
            "seed": fitted["start"]["seed"],
            "init": dict(fitted["start"]["init"]),
            "nll": {short: fitted["metrics"][split]["nll"] for short, split in SPLITS},
            "delta_train_nll": delta,
            "energies": {n: {"kT": v, "kcal_per_mol": v * kT} for n, v in view["energies"].items()},
            "matrix_r": r,
        }
        entry["name"] = optimum_name(entry, best=not out)
        out.append(entry)
    return out


def same_optimum(a: dict, b: dict) -> bool:
    """Whether two fits (``{"energies", "matrices"}``) are one optimum: every scalar energy
    within :data:`SAME_ENERGY_KT` and every matrix r above :data:`SAME_MATRIX_R`."""
    for name, value in a["energies"].items():
        if not abs(value - b["energies"][name]) <= SAME_ENERGY_KT:
            return False
    return all(
        pearson(matrix, b["matrices"][name]) > SAME_MATRIX_R
        for name, matrix in a["matrices"].items()
    )


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of two matrices' entries (1.0 for identical ones, nan where one is constant)."""
    a, b = np.ravel(a), np.ravel(b)
    if np.array_equal(a, b):
        return 1.0
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def optimum_name(entry: dict, best: bool) -> str:
    """An optimum in words: its energies and, unless it is the best, its inverted
    matrices (``"G_I = +3.0 kT, G_C inverted (r = -0.99)"``)."""
    parts = [f"{n} = {e['kT']:+.2f} kT" for n, e in entry["energies"].items()]
    if not best:
        parts += [f"{n} inverted (r = {r:+.2f})" for n, r in entry["matrix_r"].items() if r < 0]
    text = ", ".join(parts) or f"seed {entry['seed']}"
    return f"best: {text}" if best else text


def optima_notes(found: list[dict], fits: list[dict]) -> list[str]:
    """The optima in words: how many of the starts (``fits``, records best first) reached
    the best, each other optimum within the margin (what differs, how much worse it fits
    the training reads), and how many starts ended further away."""
    best = found[0]
    listed = {index for entry in found for index in entry["starts"]}
    away = [f for f in fits if f["start"]["index"] not in listed]
    notes = [
        f"{len(best['starts'])} of {len(fits)} starts reached the best optimum ({best['name']}); "
        + (
            f"{len(found) - 1} other optimum(s) within {MARGIN_BITS} bits/read"
            if len(found) > 1
            else f"no other optimum within {MARGIN_BITS} bits/read of its training NLL"
        )
        + (
            f"; {len(away)} start(s) ended further away (the nearest "
            f"{train_nll(away[0]) - train_nll(fits[0]):.4f} bits/read worse)"
            if away
            else ""
        )
    ]
    for other in found[1:]:
        inverted = [n for n, r in other["matrix_r"].items() if r < 0]
        flipped = [
            n for n, e in other["energies"].items() if e["kT"] * best["energies"][n]["kT"] < 0
        ]
        words = [f"{n} = {e['kT']:+.1f} kT" for n, e in other["energies"].items()]
        words += [f"the {n} matrix inverted (r = {other['matrix_r'][n]:+.2f})" for n in inverted]
        if flipped:
            mirror = " (a mirror solution)" if inverted else ""
            why = f"the data do not fix the sign of {', '.join(flipped)}{mirror}"
        else:
            why = "the likelihood has more than one optimum here"
        described = " and ".join(words) or "other values"
        notes.append(
            f"another optimum (start {other['start']}) with {described} "
            f"fits the training reads {other['delta_train_nll']:.4f} bits/read worse "
            f"(validation {other['nll']['val'] - best['nll']['val']:+.4f}): {why}; "
            "choose by what is known outside these reads (a protein's known motif)"
        )
    return notes


def fit_view(module, fitted: dict) -> dict:
    """A fit's learned scalar energies (kT) and site matrices (zero-mean gauge), from the
    ``module_state`` of a fit record (loaded into a fresh instance of ``module``'s class)."""
    holder = type(module)()
    holder.load_state_dict(torch_state(fitted["module_state"]))
    gauged = contract.zero_mean_gauge(holder.get_params(), holder)
    slots = contract.layout(holder)
    return {
        "energies": {
            n: float(gauged[n]) for n, s in slots.items() if s.kind == "energy" and s.learned
        },
        "matrices": {
            n: np.asarray(gauged[n]) for n, s in slots.items() if s.kind == "matrix" and s.learned
        },
    }


def train_nll(fitted: dict) -> float:
    """A fit's training NLL in bits per read (inf when not finite)."""
    value = float(fitted["metrics"]["training"]["nll"])
    return value if math.isfinite(value) else math.inf


def torch_state(state: dict) -> dict:
    """A state dict of numpy arrays as tensors (the same bits)."""
    return {k: torch.from_numpy(np.array(v)) for k, v in state.items()}
