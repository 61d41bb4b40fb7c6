"""The Newton finish: the polish to the training optimum with the exact Hessian.

After Adam the fit sits in a curved valley (matrix scales, interaction energies, the
saturation and the link trading off against each other) where L-BFGS takes hundreds of
float64 iterations. Each Newton iteration takes the full Hessian through the module's
energy table (:class:`~bpm.runtime.energy_hessian.EnergyHessian`, its Jacobian computed
once) and steps to the minimum of the local quadratic, damped (Levenberg-Marquardt)
until the training NLL falls by enough of what the quadratic predicts. Directions of
negative curvature (a saddle) are stepped along with their curvature's magnitude, so
the step still goes downhill (a saddle-free Newton step); the gauge directions, flat to
rounding, are left alone. It ends at an optimum (no
direction of negative curvature, and the quadratic promises less than
:data:`CONVERGED_NATS`) or, in a valley, once two iterations in a row lowered the
training NLL by less than :data:`NEWTON_STALL_NATS` while the quadratic's promise did not
collapse (docs/fitting.md, "The Newton finish").
"""

from __future__ import annotations

import math

import torch

from bpm.compiler.errors import BpmError

from .energy_hessian import KEEP_BYTES, EnergyHessian, has_energy_table
from .hessian import learned_slots
from .options import FitOptions
from .sources import FullBatch, tensor_chunks
from .train import LOG2, Joint, Stage, evaluate, in_float64

#: Most Newton iterations of a polish (a fit's ``polish`` caps them too).
ITERATIONS = 100
#: Most coordinates a Newton finish takes on (its eigendecomposition grows as their cube).
MAX_COORDINATES = 2000
#: Rows a chunk of the Hessian's pass.
CHUNK = 32_768
#: The finish is at an optimum once the local quadratic promises less than this many
#: nats (summed over the training reads) and no direction curves down.
CONVERGED_NATS = 1e-4
#: ... or stalled once two iterations in a row each lowered the training NLL by less than
#: this many nats: 2.6% of the 1.92 nats a 95% profile interval spans. On the lac data
#: the flexible link's valley then still falls by about 0.02 nats an iteration
#: (docs/fitting.md).
NEWTON_STALL_NATS = 0.05
#: Eigenvalues below this fraction of the largest are flat (the gauge), left alone.
FLAT = 1e-10
#: A direction curves down when its eigenvalue is below minus this fraction of the largest.
DOWNWARD = 1e-8
#: At a saddle (a direction curves down, and the gradient promises less than
#: :data:`NEWTON_STALL_NATS`) the step also goes down the direction of most negative
#: curvature, as far as that curvature alone says lowers the NLL by this many nats
#: (damping then shortens it as the NLL requires).
ESCAPE_NATS = 1.0
#: No coordinate moves by more than this in one step (kT, or log units of a bounded one);
#: a longer step is damped instead.
MAX_STEP = 2.0
#: The first damping tried when the undamped step fails, relative to the largest
#: eigenvalue; each further try multiplies it by 4, at most :data:`TRIES` tries.
DAMPING_FLOOR = 1e-8
TRIES = 30


def newton_applies(joint: Joint, rows: int) -> bool:
    """Whether the Newton finish can take this fit on: the module has an energy table,
    at most :data:`MAX_COORDINATES` coordinates, and the kept Jacobian fits in memory."""
    if not has_energy_table(joint.module):
        return False
    dim = sum(p.numel() for p in joint.parameters())
    energy = sum(getattr(joint.module, s.attribute).numel() for s in learned_slots(joint.module))
    return dim <= MAX_COORDINATES and rows * energy * 8 <= KEEP_BYTES


def uses_newton(joint: Joint, options: FitOptions, rows: int) -> bool:
    """Whether a polish to the training optimum starts with the Newton finish
    (``options.finish``): ``newton`` always (an error where it cannot apply), ``lbfgs``
    never, ``auto`` (the default) for the affine link where :func:`newton_applies`: a
    likelihood with a proper optimum, where Newton ends at it (docs/fitting.md, "The
    Newton finish"; the flexible link's valley on the lac reads it only makes slower)."""
    if options.finish == "lbfgs" or options.stop != "training":
        return False
    applies = newton_applies(joint, rows)
    if options.finish == "newton" and not applies:
        raise BpmError(
            "finish 'newton' needs a module with an energy table, at most "
            f"{MAX_COORDINATES} parameters and its Jacobian over the {rows:,} training rows "
            f"within {KEEP_BYTES >> 20} MB; use --finish lbfgs"
        )
    return applies and (options.finish == "newton" or options.link == "affine")


def newton_polish(joint: Joint, train, val, iterations: int, history: list, start=0,
                  entropies=(None, None)) -> Stage:  # fmt: skip
    """At most ``iterations`` Newton iterations in float64 on the full training batch
    (``train`` and ``val`` are ``(codes, counts)`` tensors), from the current state, to
    the training optimum; one history row an iteration (stage ``newton``)."""
    with in_float64(joint):
        joint.train()
        obs = train[1].double()
        norm = float(joint.measurement.weight(obs).sum())
        batch = FullBatch(train[0], obs, None, norm, entropies[0])
        chunks = tensor_chunks(val[0], val[1].double())
        slots = learned_slots(joint.module)
        leaves = [getattr(joint.module, s.attribute) for s in slots]
        leaves += list(joint.measurement.parameters())
        free = torch.cat([torch.full((p.numel(),), p.requires_grad) for p in leaves])
        curvature = EnergyHessian(joint.module, slots, batch.x, chunk=CHUNK, keep=True)

        def nll() -> float:
            with torch.no_grad():
                return -float(joint(batch.x, batch.obs).sum())

        def derivatives():
            joint.train()
            f, g, H = curvature.derivatives(joint.module, joint.measurement, batch.obs,
                                            joint.output)  # fmt: skip
            return f, g[free], H[free][:, free]

        done, stopped, drops, promises, val_nll = 0, "iterations", [], [], math.nan
        damping = 0.0
        while done < iterations:
            f0, g, H = derivatives()
            if not math.isfinite(f0):
                stopped = "not finite"
                break
            lam, V = torch.linalg.eigh(H)
            promised, lowest = promise(g, lam, V)
            if promised < CONVERGED_NATS and lowest >= 0:
                stopped = "converged"
                break
            escape = lowest < 0 and promised < NEWTON_STALL_NATS
            f1, damping = _damped_step(leaves, free, g, lam, V, f0, nll, damping, escape)
            done += 1
            joint.eval()
            val = evaluate(joint, chunks, entropy=entropies[1])
            val_nll = val["nll"]
            train_bits = f1 / norm / LOG2
            history.append({
                "step": start + done, "train_nll": train_bits, "val_nll": val_nll,
                "train_I_var_bits": batch.entropy_bits - train_bits,
                "val_I_var_bits": val["I_var_bits"], "stage": "newton",
            })  # fmt: skip
            drops.append(f0 - f1)
            promises.append(promised)
            if _stalled(drops, promises, lowest < 0):
                stopped = "stalled"
                break
    return Stage("newton", done, stopped, val_nll)


def _stalled(drops: list[float], promises: list[float], curving_down: bool) -> bool:
    """Two iterations in a row lowered the NLL by less than :data:`NEWTON_STALL_NATS`,
    and the local quadratic's promise is not collapsing as it does near an optimum (to
    less than a tenth from one iteration to the next): a valley, not the last steps in.
    While a direction still curves down (``curving_down``: the steps go down it) the
    drops must be ten times smaller: a valley running off to a bound (the floor going to
    zero) falls by a few hundredths of a nat a step for a while.

    >>> _stalled([0.04, 0.03], [0.05, 0.04], False), _stalled([0.04, 0.03], [0.05, 1e-3], False)
    (True, False)
    >>> _stalled([0.04, 0.03], [0.05, 0.04], True), _stalled([0.004, 0.003], [0.05, 0.04], True)
    (False, True)
    """
    limit = NEWTON_STALL_NATS / (10.0 if curving_down else 1.0)
    if len(drops) < 2 or max(drops[-2:]) >= limit:
        return False
    return promises[-1] > 0.1 * promises[-2]


def promise(g: torch.Tensor, lam: torch.Tensor, V: torch.Tensor) -> tuple[float, float]:
    """What the local quadratic promises a full saddle-free Newton step lowers the NLL by
    (``g . |H|^+ g / 2``, over the eigenpairs not flat, :data:`FLAT`) and the lowest
    eigenvalue relative to the largest (0 unless below ``-DOWNWARD``: a direction that
    curves down).

    >>> lam, V = torch.linalg.eigh(torch.tensor([[2.0, 0.0], [0.0, -2.0]], dtype=torch.float64))
    >>> promise(torch.tensor([2.0, 1.0], dtype=torch.float64), lam, V)
    (1.25, -1.0)
    """
    top = float(lam.abs().max()) if len(lam) else 0.0
    if top == 0.0:
        return 0.0, 0.0
    keep = lam.abs() > FLAT * top
    gv = V.T @ g
    promised = 0.5 * float((gv[keep] ** 2 / lam[keep].abs()).sum())
    lowest = float(lam[0]) / top
    return promised, lowest if lowest < -DOWNWARD else 0.0


def newton_step(g, lam, V, damping: float = 0.0, escape: bool = False):
    """The damped saddle-free Newton step for gradient ``g`` and a Hessian of eigenvalues
    ``lam`` (ascending) and eigenvectors ``V`` (columns): ``-sum_i v_i (v_i . g) /
    (|lambda_i| + damping)`` over the eigenpairs not flat (:data:`FLAT`). With ``escape``
    (at a saddle: a direction curves down and the gradient promises little) it also moves
    along the lowest one, downhill, as far as its curvature says lowers the NLL by
    :data:`ESCAPE_NATS` (damped alike). Returns the step and the decrease the quadratic
    model ``|H|`` predicts for it.

    >>> lam, V = torch.linalg.eigh(torch.tensor([[2.0, 0.0], [0.0, 4.0]], dtype=torch.float64))
    >>> step, predicted = newton_step(torch.tensor([2.0, 4.0], dtype=torch.float64), lam, V)
    >>> step.tolist(), predicted
    ([-1.0, -1.0], 3.0)
    >>> newton_step(torch.tensor([2.0, 4.0], dtype=torch.float64), lam, V, damping=2.0)[0].tolist()
    [-0.5, -0.6666666666666666]
    """
    top = float(lam.abs().max()) if len(lam) else 0.0
    if top == 0.0:
        return torch.zeros_like(g), 0.0
    keep = lam.abs() > FLAT * top
    gv = V.T @ g
    size = lam.abs() + damping
    coefficient = torch.where(keep, -gv / size.clamp(min=FLAT * top), torch.zeros_like(gv))
    if escape and float(lam[0]) < -DOWNWARD * top:
        sign = -1.0 if float(gv[0]) > 0 else 1.0
        reach = (2.0 * ESCAPE_NATS / abs(float(lam[0]))) ** 0.5
        coefficient[0] = coefficient[0] + sign * reach * abs(float(lam[0])) / float(size[0])
    predicted = -float((gv * coefficient).sum()) - 0.5 * float((lam.abs() * coefficient**2).sum())
    return V @ coefficient, predicted


def _damped_step(leaves, free, g, lam, V, f0: float, nll, damping: float, escape: bool):
    """Take the damped Newton step (:func:`newton_step`) with the least damping, from
    ``damping`` up, whose actual decrease is at least a tenth of the predicted one
    (Levenberg-Marquardt: each try costs one pass), or with ``escape`` any decrease (along
    a direction that curves down the quadratic's prediction means little: on a valley
    running off to a bound, the floor going to zero, the NLL falls by thousandths of a
    nat); stay put if none does. Returns the NLL where it ends and the damping to start
    the next iteration from."""
    start = _flat(leaves)
    top = float(lam.abs().max()) if len(lam) else 1.0
    for _ in range(TRIES):
        step, predicted = newton_step(g, lam, V, damping, escape)
        if float(step.abs().max()) <= MAX_STEP:
            _assign(leaves, free, start, step)
            f1 = nll()
            enough = f1 < f0 if escape else f0 - f1 >= 0.1 * predicted
            if math.isfinite(f1) and predicted > 0 and enough:
                ratio = (f0 - f1) / predicted
                return f1, damping / 10.0 if ratio > 0.75 else damping
        damping = max(4.0 * damping, DAMPING_FLOOR * top)
    _assign(leaves, free, start, torch.zeros_like(g))
    return f0, damping


def _flat(leaves) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in leaves])


def _assign(leaves, free, start: torch.Tensor, move: torch.Tensor) -> None:
    """Set the leaves to ``start`` with ``move`` added to its free coordinates."""
    z = start.clone()
    z[free] += move
    with torch.no_grad():
        offset = 0
        for p in leaves:
            p.copy_(z[offset : offset + p.numel()].reshape(p.shape))
            offset += p.numel()
