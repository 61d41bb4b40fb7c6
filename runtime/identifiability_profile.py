"""One profile likelihood in one process: refits along one quantity, and its 95% interval.

A quantity (:class:`Target`) is either a site energy's scale, a multiplier ``m`` on its
sequence-dependent part (the additive table in the zero-mean gauge, with its neighbor
or pairwise table, all times ``m``; the offset free), or a learned scalar energy's
value in kT. :class:`Profile` holds the quantity at a value and refits everything
else, the module's other parameters and the measurement process, on the training
reads: float64 L-BFGS (:class:`~bpm.runtime.optimizers.LBFGS` run by
:func:`~bpm.runtime.train.run_stage`, stopped when the training NLL stalls, as a fit run
to the training optimum stops), at most :data:`POINT_ITERATIONS` iterations from the
neighbouring point's state; or, where the fit was finished by Newton, Newton steps
(:func:`~bpm.runtime.newton.newton_polish`, by its own rule). :func:`walk` steps outward
from the estimate until the profile has risen past the 95% level, aiming by the secant
of the root deviance ``sqrt(2 dNLL)`` (linear in the value for a quadratic profile),
and :func:`interval` solves for the crossings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import contract
from .newton import newton_polish
from .optimizers import LBFGS
from .sources import FullBatch, tensor_chunks
from .start import hold
from .train import LOG2, SETTLED_STOPS, Joint, evaluate, run_stage, snapshot

#: 2 dNLL at the 95% level for one parameter (chi-square, one degree of freedom).
CHI2_95 = 3.841458820694124
#: The rise of the total NLL (nats) that bounds the 95% profile interval.
HALF_CHI2_95 = CHI2_95 / 2
#: Search limits: multipliers on the fitted table; kT either side of a fitted energy.
SCALE_LIMITS = (0.2, 5.0)
ENERGY_REACH = 8.0
#: First steps outward (tripled while the profile stays flat).
SCALE_STEP = 0.02
ENERGY_STEP = 0.25
#: L-BFGS iterations (at most) for the refit at the estimate and at each further point.
CENTER_ITERATIONS = 60
POINT_ITERATIONS = 60
#: Newton iterations (at most) for a refit of a target refitted by ``newton``.
NEWTON_ITERATIONS = 20
#: A refit has settled once two steps of ten L-BFGS iterations in a row each lowered the
#: total NLL by less than this (nats): 2.5% of the 1.92 nats of the 95% level. A point
#: above the level whose refit has not settled bounds nothing.
SETTLED_NATS = 0.05
#: Refits on each side of the estimate at most, and L-BFGS iterations on each side (a
#: side ends open once they are spent).
MAX_POINTS = 6
SIDE_ITERATIONS = 150
#: A refit above the level that has not settled still counts as above it when it is
#: above by more than this many times its last ten iterations' fall (the rest of the
#: fall would have to exceed that: no sooner than for a linear rate of 0.83).
FALLING_MARGIN = 5.0
#: The walk aims this far past the 95% crossing the secant of the root deviance predicts
#: (a profile flatter than a parabola further out would otherwise be undershot: lac's
#: real reads ended two sides 3% short of the level at 1.15, their budget spent).
AIM = 1.3
TABLE_PARTS = ("matrix", "neighbor", "pairwise")


@dataclass(frozen=True)
class Target:
    """One quantity to profile: ``kind`` ``"scale"`` (a site's multiplier; ``held`` its
    tables) or ``"energy"`` (``held`` the energy itself), its estimate, its search limits
    (``lower``, ``upper``) and first step, in its own units."""

    name: str
    kind: str
    held: tuple[str, ...]
    estimate: float
    lower: float
    upper: float
    step: float
    #: the rise of the total NLL (nats) that bounds the interval: HALF_CHI2_95 times
    #: the reads' dispersion
    rise: float = HALF_CHI2_95
    #: how each refit runs: ``lbfgs`` or ``newton`` (:mod:`bpm.runtime.newton`), as the
    #: fit's own polish did
    finish: str = "lbfgs"


def targets(module, names=None, dispersion: float = 1.0, finish="lbfgs") -> list[Target]:
    """Every site energy whose tables are all learned (a scale), then every learned scalar
    energy (a value); only those in ``names`` when given; each bounded where the NLL has
    risen ``dispersion`` times :data:`HALF_CHI2_95`, refitted by ``finish``."""
    rise = HALF_CHI2_95 * dispersion
    slots = contract.layout(module)
    values = module.get_params()
    out = []
    for site in contract.site_energies(module):
        parts = [s for s in slots.values() if s.site == site and s.kind in TABLE_PARTS]
        if parts and all(s.learned for s in parts):
            held = tuple(s.name for s in parts)
            out.append(Target(site, "scale", held, 1.0, *SCALE_LIMITS, SCALE_STEP, rise, finish))
    for name, slot in slots.items():
        if slot.kind == "energy" and slot.learned:
            value = float(values[name])
            reach = (value - ENERGY_REACH, value + ENERGY_REACH)
            out.append(Target(name, "energy", (name,), value, *reach, ENERGY_STEP, rise, finish))
    if names is not None:
        out = [t for t in out if t.name in set(names)]
    return out


class Profile:
    """The joint model in float64 with one quantity held; :meth:`at` refits at a value.

    ``module`` and ``measurement`` are changed in place (pass copies); ``codes`` and
    ``counts`` are the training reads.
    """

    def __init__(self, module, measurement, output: str, codes, counts, target: Target):
        self.joint = Joint(module, measurement, output).double()
        self.target = target
        x = torch.from_numpy(np.asarray(codes, dtype=np.int64))
        obs = torch.from_numpy(np.asarray(counts, dtype=np.float64))
        self.data = (x, obs)
        self.batches = FullBatch(x, obs, None)
        self.reads = float(measurement.weight(obs).sum())
        hold(module, target.held)
        self.value = target.estimate
        self.iterations = 0
        self.last_drop = math.inf  # nats, the last ten iterations of the last refit
        if target.kind == "scale":
            site = target.name
            gauged = contract.zero_mean_gauge(module.get_params(), module)
            module.set_params({site: torch.as_tensor(gauged[site])})
            module.set_params({f"{site}.offset": torch.tensor(gauged[f"{site}.offset"])})
            params = module.get_params()
            self.tables = {name: params[name].clone() for name in target.held}
            with torch.no_grad():
                energy = module.energies(x)[site]
            self.mean_part = float(energy.mean()) - float(params[f"{site}.offset"])

    def nll(self) -> float:
        """The total training NLL (nats, every read) at the current state."""
        return evaluate(self.joint, tensor_chunks(*self.data))["nll"] * LOG2 * self.reads

    def place(self, value: float) -> None:
        """Hold the quantity at ``value``; for a scale the offset moves so that the
        library's mean site energy stays where it was."""
        module = self.joint.module
        if self.target.kind == "energy":
            module.set_params({self.target.name: torch.tensor(value, dtype=torch.float64)})
        else:
            offset = f"{self.target.name}.offset"
            moved = module.get_params()[offset] + (self.value - value) * self.mean_part
            module.set_params({name: value * t for name, t in self.tables.items()})
            module.set_params({offset: moved})
        self.value = value

    def refit(self, iterations: int) -> tuple[float, bool]:
        """At most ``iterations`` L-BFGS iterations on everything not held, by the rule
        of a fit run to the training optimum (:func:`~bpm.runtime.paths.polish_rule`),
        stalled at :data:`SETTLED_NATS`, for a target refitted by ``newton`` after at most
        :data:`NEWTON_ITERATIONS` Newton iterations by their own rule (as a fit's polish
        runs); the total training NLL (nats) at the end and whether it stopped so
        (settled) rather than at the cap."""
        history: list[dict] = []
        if self.target.finish == "newton":
            most = min(iterations, NEWTON_ITERATIONS)
            self.iterations += newton_polish(
                self.joint, self.data, self.data, most, history
            ).iterations
        stage = self._lbfgs(iterations, history)
        self.iterations += stage.iterations
        nll = self.nll()
        last = [row["val_nll"] * LOG2 * self.reads for row in history[-2:]]
        self.last_drop = last[0] - last[1] if len(last) == 2 else math.inf
        return nll, stage.stopped in SETTLED_STOPS

    def _lbfgs(self, iterations: int, history: list):
        trainable = [p for p in self.joint.parameters() if p.requires_grad]
        return run_stage(
            self.joint,
            LBFGS(trainable, stall=SETTLED_NATS / self.batches.norm),
            self.batches,
            lambda: evaluate(self.joint, tensor_chunks(*self.data)),
            eval_every=1,
            patience=10**9,
            min_delta=-math.inf,
            max_iterations=iterations,
            on_error="stop",
            history=history,
        )

    def at(self, value: float, state: dict, before: dict | None = None):
        """Hold the quantity at ``value`` and refit from ``state`` (a :meth:`state`), or,
        with ``before`` (the state of the point before it), from the line through the two
        extended to ``value``; ``(total training NLL in nats, settled)`` as :meth:`refit`."""
        self.joint.load_state_dict(state["joint"])
        self.value = state["value"]
        if before is not None and before["value"] != state["value"]:
            reach = (value - state["value"]) / (state["value"] - before["value"])
            guess = {
                k: a + reach * (a - before["joint"][k]) if a.is_floating_point() else a
                for k, a in state["joint"].items()
            }
            self.joint.load_state_dict(guess)
            self.value = value  # the offset moved along the line already
        self.place(value)
        return self.refit(POINT_ITERATIONS)

    def state(self) -> dict:
        return {"joint": snapshot(self.joint), "value": self.value}


def walk(profile: Profile, direction: int, points: list, start: dict, nll: float) -> str:
    """Refit outward from the estimate (``start``, total NLL ``nll``) in ``direction``
    (+1 or -1) until the profile has risen ``target.rise`` above its lowest point;
    appends ``(value, nll)`` rows to ``points`` (every point of this profile so far, so
    both sides share the lowest). A refit above the level that has not settled goes on
    from where it stopped (:func:`settle`) while the side's budget lasts; one still
    unsettled then bounds nothing unless it is above by :data:`FALLING_MARGIN` times its
    last fall: it is left out, and the next point is halfway back to the last one inside.
    Returns how the side ended: ``"closed"`` (a settled refit above the level),
    ``"limit"`` (the search limit reached inside the level), ``"unsettled"`` (refits
    above the level never settled) or ``"budget"`` (:data:`MAX_POINTS` on this side, or
    :data:`SIDE_ITERATIONS`, spent)."""
    target = profile.target
    limit = target.upper if direction > 0 else target.lower
    critical = math.sqrt(2 * target.rise)
    inside, outside, step = (target.estimate, nll, start), None, target.step
    before, ceiling, spent = None, None, profile.iterations
    for _ in range(MAX_POINTS):
        if profile.iterations - spent >= SIDE_ITERATIONS:
            break
        low_value, low = min(points, key=lambda p: p[1])
        z_in = math.sqrt(2 * max(inside[1] - low, 0.0))
        if outside is None:
            if inside[0] == limit:
                return "limit"
            ahead = (inside[0] - low_value) * direction
            if ahead > 0 and z_in > 0.3:  # aim past the crossing along the secant
                reach = ahead * min(max(AIM * critical / z_in, 1.3), 3.0)
            else:
                reach, step = max(ahead, 0.0) + step, 3 * step
            value = low_value + direction * reach
            value = min(value, limit) if direction > 0 else max(value, limit)
            if ceiling is not None and (value - ceiling) * direction >= 0:
                value = inside[0] + 0.5 * (ceiling - inside[0])
        else:
            z_out = math.sqrt(2 * max(outside[1] - low, 0.0))
            if min(abs(z_in - critical), abs(z_out - critical)) < 0.35 or z_out <= z_in:
                return "closed"
            frac = min(max((critical - z_in) / (z_out - z_in), 0.15), 0.85)
            value = inside[0] + frac * (outside[0] - inside[0])
        found, settled = profile.at(value, inside[2], before)
        found, settled = settle(profile, found, settled, low, spent)
        above = found - min(low, found) - target.rise
        if above >= 0:
            if not settled and above < FALLING_MARGIN * profile.last_drop:
                if outside is not None:
                    return "closed"
                ceiling = value
                continue
            points.append((value, found))
            outside = (value, found)
        else:
            points.append((value, found))
            before, inside = inside[2], (value, found, profile.state())
    if outside is not None:
        return "closed"
    return "unsettled" if ceiling is not None else "budget"


def settle(profile: Profile, found: float, settled: bool, low: float, spent: int):
    """Go on refitting a point above the level that has not settled (it was still
    falling at its cap) from where it stopped, :data:`POINT_ITERATIONS` at a time, while
    it stays above by less than :data:`FALLING_MARGIN` times its last fall and the side's
    :data:`SIDE_ITERATIONS` (counted from ``spent``) last; ``(nll, settled)`` at the end.
    A point can only be dropped as unsettled once its side's budget is gone."""
    rise = profile.target.rise
    while (
        not settled
        and 0 <= found - min(low, found) - rise < FALLING_MARGIN * profile.last_drop
        and profile.iterations - spent < SIDE_ITERATIONS
    ):
        found, settled = profile.refit(POINT_ITERATIONS)
    return found, settled


def parabola(v, y):
    """``(a, b, c)`` of the parabola through three points ``(v[i], y[i])``."""
    return np.polyfit(np.asarray(v, float), np.asarray(y, float), 2)


def interval(points, rise: float = HALF_CHI2_95) -> dict:
    """The interval where a profile (``(value, nll)`` rows) stays within ``rise`` of its
    minimum: ``{"minimum", "low", "high"}``, ``low``/``high`` None where the points never
    rise that far on that side.

    The minimum is the vertex of the parabola through the lowest point and its
    neighbours (when it lies between them), and each crossing the root of the parabola
    through the two points that bracket it and the next one inward, or where the root
    deviance ``sqrt(2 dNLL)`` crosses linearly; both are exact for a quadratic profile.
    """
    rows = sorted((float(v), float(n)) for v, n in points if math.isfinite(n))
    v = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows])
    k = int(np.argmin(y))
    at, low = float(v[k]), float(y[k])
    if 0 < k < len(v) - 1:
        a, b, c = parabola(v[k - 1 : k + 2], y[k - 1 : k + 2])
        vertex = -b / (2 * a) if a > 0 else math.nan
        if v[k - 1] < vertex < v[k + 1]:
            at, low = float(vertex), min(low, float(c - b * b / (4 * a)))
    level = low + rise
    ends = {}
    for direction, side in ((-1, "low"), (1, "high")):
        i = k
        while 0 <= i + direction < len(v) and y[i + direction] < level:
            i += direction
        j = i + direction
        if not 0 <= j < len(v):
            ends[side] = None
            continue
        ends[side] = cross(v, y, i, j, i - direction, level, low)
    return {"minimum": at, "minimum_nll": low, **ends}


def cross(v, y, i, j, inward, level, low) -> float:
    """Where the profile crosses ``level`` between points ``i`` (below) and ``j`` (at or
    above), from the parabola through ``i``, ``j`` and ``inward``, else linearly in the
    root deviance."""
    lo, hi = sorted((v[i], v[j]))
    if 0 <= inward < len(v):
        a, b, c = parabola(v[[inward, i, j]], y[[inward, i, j]])
        roots = np.roots([a, b, c - level]) if abs(a) > 1e-300 else np.roots([b, c - level])
        inside = [float(r.real) for r in roots if abs(r.imag) < 1e-12 and lo <= r.real <= hi]
        if len(inside) == 1:
            return inside[0]
    z_i, z_j = (math.sqrt(2 * max(y[n] - low, 0.0)) for n in (i, j))
    critical = math.sqrt(2 * (level - low))
    frac = (critical - z_i) / (z_j - z_i) if z_j > z_i else 1.0
    return float(v[i] + frac * (v[j] - v[i]))


def run_profile(module, measurement, output, codes, counts, target: Target) -> dict:
    """One quantity's profile: the fit's NLL, the refit at the estimate, the walk on both
    sides; ``{"name", "kind", "fit_nll", "points", "sides", "settled", "iterations"}``
    (NLL in total nats; ``sides`` how each ended, as :func:`walk` says; ``settled``
    whether the refit at the estimate settled)."""
    profile = Profile(module, measurement, output, codes, counts, target)
    fit_nll = profile.nll()
    center, settled = profile.refit(CENTER_ITERATIONS)
    start = profile.state()
    points = [(target.estimate, center)]
    sides = {"high": walk(profile, 1, points, start, center)}
    sides["low"] = walk(profile, -1, points, start, center)
    return {
        "name": target.name,
        "kind": target.kind,
        "fit_nll": fit_nll,
        "points": points,
        "sides": sides,
        "settled": settled,
        "iterations": profile.iterations,
    }
