"""How well the data determine each energy: profile likelihoods over its size.

For a full-batch fit, :func:`identifiability` profiles

- each sequence-dependent energy (a site's additive matrix, with its neighbor or
  pairwise table when it has one) over a multiplier ``m`` on its sequence-dependent
  part: the table in the zero-mean gauge times ``m``, its shape held, its offset and
  everything else (other energies, scalars, the measurement process) refitted;
- each learned scalar energy over its value in kT, everything else refitted.

Every profile point is a warm-started refit on the training reads, in float64: the site
tables held at their fitted shapes times a learned scale each
(:class:`~bpm.runtime.identifiability_refit.Shapes`), the rest learned, by damped
Newton steps with the exact Hessian of those few coordinates, at most ``iterations``
of them or until the NLL stops falling. The default fit is
early-stopped, not at the training optimum (docs/fitting.md), so profile points are
compared only with each other: the point at the fit (``m = 1``, or the fitted value)
is refitted by exactly the same procedure, and the profile's minimum is the lowest
refitted training NLL on the grid (total nats: every read's NLL summed). The 95%
interval is where ``2 (NLL - NLL_min) <= 3.84`` (chi-square, one degree of freedom),
interpolated linearly in ``sqrt(2 (NLL - NLL_min))`` between grid points; a side the
search did not close (the profile stayed within 3.84 up to the search's limit) is
reported at that limit with ``closed`` False and named in ``open``.

The grid is walked outward from the fit on each side: steps grow while the profile is
flat and are aimed (by the secant of ``sqrt(2 dNLL)``, which is linear for a quadratic
profile) at the crossing, which is then refined. Names (and, with enough processors,
the two sides of each) run in parallel processes (the ``spawn`` context, one torch
thread each, at most ``os.cpu_count()`` at a time); a script calling this needs an
``if __name__ == "__main__":`` guard, as for any spawned pool.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from bpm.compiler.errors import BpmError

from . import contract
from .identifiability_refit import PARTS, Shapes

#: 2 dNLL at the 95% level for one parameter (chi-square, 1 degree of freedom).
CHI2_95 = 3.841458820694124
#: Newton steps per profile point at most (each warm-started from its neighbour).
ITERATIONS = 40
#: Search limits and first steps: multipliers for scales, kT around the fit for scalars.
SCALE_RANGE = (0.25, 2.5)
SCALE_STEP = 0.05
ENERGY_RANGE = 4.0
ENERGY_STEP = 0.25
#: At most this many refits on each side of the fit.
MAX_POINTS = 9
#: An interval wider than this is put in words (ratio high/low for scales, kT for scalars).
WIDE_SCALE = 1.25
WIDE_ENERGY = 1.0


def identifiability(
    result,
    *,
    names=None,
    iterations: int = ITERATIONS,
    max_points: int = MAX_POINTS,
    processes: int | None = None,
) -> dict:
    """Profile-likelihood intervals for a full-batch fit (``result.dataset`` set).

    Returns ``{"energy_scale": {site: entry}, "profile": {energy: entry}, "notes":
    [...], "seconds": wall time}``; each entry is ``{"estimate", "low", "high",
    "closed", "open", "points"}``: the profile's argmin (a multiplier on the fitted
    table, or kT), the 95% interval, whether both sides were closed, the open sides,
    and the ``[value, nll]`` points (nats, relative to the minimum). ``names`` limits
    the profiles to some energies; ``processes`` (default: as many as useful, at most
    ``os.cpu_count()``) is the pool's size, ``1`` to run everything in this process.
    """
    started = time.perf_counter()
    if result.dataset is None:
        raise BpmError("identifiability needs the fit's data in memory (a full-batch fit)")
    module = result.module
    targets = profile_targets(module, names)
    train = result.dataset.subset("training")
    shared = {
        "module_state": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "measurement_config": result.measurement.config(),
        "measurement_state": {
            k: v.detach().cpu() for k, v in result.measurement.state_dict().items()
        },
        "output": result.output,
        "codes": np.asarray(train.codes, dtype=np.int64),
        "counts": np.asarray(train.counts, dtype=np.float64),
        "iterations": iterations,
        "max_points": max_points,
    }
    workers = processes or min(os.cpu_count() or 1, 2 * len(targets))
    sides = ((-1,), (1,)) if workers >= 2 * len(targets) else ((-1, 1),)
    jobs = [(name, kind, side) for name, kind in targets.items() for side in sides]
    with tempfile.TemporaryDirectory(prefix="bpm-identifiability-") as tmp:
        source = Path(tmp) / "model.py"
        source.write_text(result.source or contract.resolve_model(type(module))[1])
        shared["source"] = str(source)
        tasks = [{**shared, "name": n, "kind": k, "sides": s} for n, k, s in jobs]
        if workers <= 1:
            found = [profile_task(task) for task in tasks]
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=context) as pool:
                found = list(pool.map(profile_task, tasks))
    points: dict[str, dict] = {}
    for (name, _, _), rows in zip(jobs, found, strict=True):
        points.setdefault(name, {}).update(rows)
    out = {"energy_scale": {}, "profile": {}}
    for name, kind in targets.items():
        center = 1.0 if kind == "scale" else float(module.get_params()[name])
        entry = interval(points[name], center)
        out["energy_scale" if kind == "scale" else "profile"][name] = entry
    out["notes"] = describe(out, contract.kT_kcal_per_mol(module))
    out["seconds"] = round(time.perf_counter() - started, 3)
    return out


def profile_targets(module, names=None) -> dict[str, str]:
    """``{name: "scale" | "energy"}``: every learned site table and learned scalar energy
    (limited to ``names`` when given)."""
    slots = contract.layout(module)
    out = {}
    for site in contract.site_energies(module):
        parts = [s for s in slots.values() if s.site == site and s.kind in PARTS]
        if parts and all(s.learned for s in parts):
            out[site] = "scale"
    for name, slot in slots.items():
        if slot.kind == "energy" and slot.learned:
            out[name] = "energy"
    if names is not None:
        unknown = sorted(set(names) - set(out))
        if unknown:
            raise BpmError(f"cannot profile {unknown}: learned energies are {sorted(out)}")
        out = {n: k for n, k in out.items() if n in names}
    return out


# ---------------------------------------------------------------- one name, in a worker


def profile_task(task: dict) -> dict[float, float]:
    """Refit the profile points of one name on the given sides: ``{value: total NLL}``."""
    from .load import build_measurement, import_source
    from .train import Joint

    torch.set_num_threads(1)
    cls = import_source(Path(task["source"]))
    module = cls()
    module.load_state_dict(task["module_state"])
    measurement = build_measurement(task["measurement_config"])
    measurement.load_state_dict(task["measurement_state"])
    joint = Joint(module, measurement, task["output"]).double()
    x = torch.from_numpy(task["codes"])
    c = torch.from_numpy(task["counts"])
    name, kind = task["name"], task["kind"]
    problem = Shapes(joint, free_scale=lambda site: kind == "energy" or site != name)
    if kind == "scale":
        center, step, edges = 1.0, SCALE_STEP, SCALE_RANGE
        offset = f"{name}.offset"
    else:
        center = float(module.get_params()[name])
        step, edges = ENERGY_STEP, (center - ENERGY_RANGE, center + ENERGY_RANGE)
        contract.stored(module, name).requires_grad_(False)
    current = {"value": center}

    def place(value: float) -> None:
        if kind == "energy":
            module.set_params({name: torch.tensor(value, dtype=torch.float64)})
        else:
            with torch.no_grad():
                mean_seq = float(module.energies(x)[name].mean() - module.get_params()[offset])
            shift = -(value / current["value"] - 1.0) * mean_seq  # the library's mean stays
            module.set_params({offset: module.get_params()[offset].double() + shift})
            problem.set_scale(name, value)
        current["value"] = value

    def at(value: float, snapshot=None) -> tuple[float, dict]:
        if snapshot is not None:
            problem.load(snapshot)
            current["value"] = snapshot["value"]
        place(value)
        return problem.refit(x, c, task["iterations"]), {**problem.save(), "value": value}

    rows = {}
    first, start = at(center)
    rows[center] = first
    for side in task["sides"]:
        rows.update(walk(at, center, first, start, side * step, edges, task["max_points"]))
    return rows


def walk(at, center, nll0, state0, step, edges, max_points) -> dict[float, float]:
    """Refits outward from ``center`` in the direction of ``step`` until the profile is
    past the 95% crossing, refining the bracket; ``{value: nll}``."""
    limit = edges[1] if step > 0 else edges[0]
    rows = {}
    best = nll0
    inside = (center, 0.0, state0)  # value, z, state of the last point inside
    outside = None
    for _ in range(max_points):
        if outside is None:
            v0, z0, _ = inside
            if z0 > 0.3:  # aim at z = 2.2 along the secant from the minimum
                reach = (v0 - center) * 2.2 / z0
                target = center + max(min(reach, 3 * (v0 - center)), 1.2 * (v0 - center))
            else:
                target = v0 + step
                step *= 2
            value = min(target, limit) if step > 0 else max(target, limit)
        else:
            (v_in, z_in, _), (v_out, z_out) = inside, outside
            if z_out - z_in < 0.35 or abs(v_out - v_in) < 1e-3 * max(1.0, abs(center)):
                break
            frac = (math.sqrt(CHI2_95) - z_in) / (z_out - z_in)
            value = v_in + min(max(frac, 0.2), 0.8) * (v_out - v_in)
        nll, state = at(value, inside[2])
        rows[value] = nll
        best = min(best, nll)
        z = math.sqrt(2 * max(nll - best, 0.0))
        if z >= math.sqrt(CHI2_95):
            outside = (value, z)
        else:
            inside = (value, z, state)
            if outside is None and value == limit:
                break
    return rows


# ---------------------------------------------------------------- intervals and words


def interval(points: dict[float, float], center: float) -> dict:
    """The 95% interval of a profile given as ``{value: nll}`` (see the module text)."""
    values = np.array(sorted(points))
    nll = np.array([points[v] for v in values])
    finite = np.isfinite(nll)
    values, nll = values[finite], nll[finite]
    k = int(np.argmin(nll))
    z = np.sqrt(2 * np.maximum(nll - nll[k], 0.0))
    limit = math.sqrt(CHI2_95)
    ends, open_sides = [], []
    for direction, side in ((-1, "low"), (1, "high")):
        i, end = k, None
        while 0 <= i + direction < len(values):
            j = i + direction
            if z[j] >= limit:
                frac = (limit - z[i]) / (z[j] - z[i])
                end = float(values[i] + frac * (values[j] - values[i]))
                break
            i = j
        if end is None:
            end = float(values[i])
            open_sides.append(side)
        ends.append(end)
    estimate = float(values[k])
    if 0 < k < len(values) - 1:  # the vertex of the parabola through the argmin
        a, b, _ = np.polyfit(values[k - 1 : k + 2], nll[k - 1 : k + 2], 2)
        if a > 0 and values[k - 1] <= -b / (2 * a) <= values[k + 1]:
            estimate = float(-b / (2 * a))
    return {
        "estimate": estimate,
        "low": ends[0],
        "high": ends[1],
        "closed": not open_sides,
        "open": open_sides,
        "fitted": center,
        "points": [[float(v), float(n - nll[k])] for v, n in zip(values, nll, strict=True)],
    }


def describe(found: dict, kcal: float) -> list[str]:
    """Words for every wide or open interval in ``found`` (from :func:`identifiability`)."""
    notes = []
    for name, e in found["energy_scale"].items():
        low, high = e["low"], e["high"]
        where = _span(low, high, e["open"], "{:.2f}")
        if e["open"] or high / max(low, 1e-12) > WIDE_SCALE:
            notes.append(
                f"the {name} table's overall scale is determined only to within {where} of "
                "its fitted size (95% profile interval): the data fix its shape, not its size"
            )
        elif not low <= 1.0 <= high:
            notes.append(
                f"the {name} table's fitted size lies outside its 95% profile interval "
                f"({where} of the fitted size): the fit stopped short along its scale"
            )
    for name, e in found["profile"].items():
        low, high = e["low"], e["high"]
        if e["open"] or high - low > WIDE_ENERGY:
            kt = _span(low, high, e["open"], "{:.2f}")
            kc = _span(low * kcal, high * kcal, e["open"], "{:.2f}")
            notes.append(
                f"{name} is determined only to within {kt} kT ({kc} kcal/mol; 95% profile "
                f"interval around {e['estimate']:.2f} kT)"
            )
    return notes


def _span(low: float, high: float, open_sides, fmt: str) -> str:
    left = ("below " if "low" in open_sides else "") + fmt.format(low)
    right = fmt.format(high) + (" or more" if "high" in open_sides else "")
    return f"{left} to {right}"
