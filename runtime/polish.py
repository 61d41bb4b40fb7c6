"""The float64 polish that follows Adam: L-BFGS, after Newton steps
(:mod:`~bpm.runtime.newton`) where those apply, on the full training batch or on a store.

Adam's one-cycle schedule leaves a fit short of the optimum along its flat directions; a
quasi-Newton method follows them. Float32 L-BFGS stalls once its line search can no
longer resolve the changes along them (docs/fitting.md), so the stage runs in float64.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .newton import ITERATIONS as NEWTON_ITERATIONS
from .newton import newton_polish, uses_newton
from .optimizers import LBFGS, STALL_NATS
from .options import FitOptions
from .progress import phase
from .sources import Comm, FullBatch, StoreBatch, store_chunks, store_split, tensor_chunks
from .train import Joint, evaluate, in_float64, run_stage


def polish(
    joint: Joint,
    train,
    val,
    iterations: int,
    history: list,
    start: int = 0,
    stop="validation",
    entropies=(None, None),
):
    """At most ``iterations`` L-BFGS iterations in float64 on the full training batch
    (``train`` and ``val`` are ``(codes, counts)`` tensors), from the current state.

    Adam's one-cycle schedule leaves the fit short of the optimum along its flat
    directions; a quasi-Newton method follows them. Float32 L-BFGS stalls once its line
    search can no longer resolve the changes along them (docs/fitting.md), so the stage
    runs in float64. It keeps the best validated state and stops after 3 checks (every
    10 iterations) without improvement, or on L-BFGS's own tolerances. With
    ``stop="training"`` it runs to the training optimum instead (:func:`polish_rule`).
    ``entropies`` are the training and validation entropy terms of I_var (None: from the
    reads; :func:`bpm.runtime.measurement_kinds.split_entropy`).
    """
    with in_float64(joint):
        norm = float(joint.measurement.weight(train[1]).sum())
        batches = FullBatch(train[0], train[1].double(), None, norm, entropies[0])
        chunks = tensor_chunks(val[0], val[1].double())
        optimizer, rule = polish_rule(joint, stop, batches.norm)
        return run_stage(
            joint,
            optimizer,
            batches,
            lambda: evaluate(joint, chunks, entropy=entropies[1]),
            entropy=batches.entropy_bits,
            eval_every=1,
            **rule,
            max_iterations=iterations,
            validate_first=True,
            on_error="stop",
            history=history,
            start=start,
        )


def polish_held(
    joint: Joint,
    train,
    val,
    options: FitOptions,
    history: list,
    start: int = 0,
    entropies=(None, None),
    show: bool = False,
    where="on the training batch",
):
    """The polish stages of a fit whose training rows are held (``train`` and ``val`` are
    ``(codes, counts)`` tensors), its phase line printed when ``show``: where the Newton
    finish applies (:func:`~bpm.runtime.newton.uses_newton`), at most
    :data:`~bpm.runtime.newton.ITERATIONS` Newton iterations, then :func:`polish` to the
    training optimum from where they end (in a valley whose floor curves down Newton's
    steps shrink while L-BFGS still walks on; after Newton it mostly stalls within a few
    dozen iterations); else :func:`polish` alone. At most ``options.polish`` iterations
    in each stage."""
    stages = []
    if uses_newton(joint, options, len(train[0])):
        most = min(options.polish, NEWTON_ITERATIONS)
        phase(show, "polish", f"float64 Newton {where}, at most {most} iterations, then "
                              f"L-BFGS to the training optimum")  # fmt: skip
        stages.append(newton_polish(joint, train, val, most, history, start, entropies))
        start += stages[-1].iterations
    else:
        phase(show, "polish", f"float64 L-BFGS {where}, at most {options.polish} iterations")
    stages.append(polish(joint, train, val, options.polish, history, start=start,
                         stop=options.stop, entropies=entropies))  # fmt: skip
    return stages


def polish_rule(joint: Joint, stop: str, reads: float) -> tuple[LBFGS, dict]:
    """The polish's L-BFGS and its stopping rule for :func:`~bpm.runtime.train.run_stage`:
    on the validation reads (best validated state, 3 checks of patience) or, for
    ``stop="training"``, at the training optimum (the last state, ended by L-BFGS's own
    tolerances or once the training NLL, ``reads`` reads, stalls: ``STALL_NATS``)."""
    if stop == "training":
        optimizer = LBFGS(trainable(joint), stall=STALL_NATS / max(reads, 1.0))
        return optimizer, {"patience": 10**9, "min_delta": -math.inf}
    return LBFGS(trainable(joint)), {"patience": 3, "min_delta": 1e-6}


def polish_stored(joint: Joint, store, comm: Comm, options: FitOptions, history, start: int,
                  show: bool):  # fmt: skip
    """The polish stages of a streamed fit: with one process and few enough training rows
    to hold, :func:`polish_held` on them (the same Newton finish as full batch); else
    :func:`polish_store`, reading them in chunks."""
    if comm.world == 1 and uses_newton(joint, options, store.sizes()["training"]):
        train = store_split(store, "training", options.device)
        val = store_split(store, "validation", options.device, options.val_rows)
        return polish_held(joint, train, val, options, history, start, show=show,
                           where="on the stored training rows")  # fmt: skip
    phase(show, "polish", f"float64 L-BFGS over the stored training rows, at most "
                          f"{options.polish} iterations")  # fmt: skip
    return [polish_store(joint, store, comm, options, history, start=start)]


def polish_store(joint: Joint, store, comm: Comm, options: FitOptions, history, start=0):
    """:func:`polish` on a store: the same float64 L-BFGS stage, each closure reading the
    training rows in chunks (every process its share, gradients summed over them), the
    validation NLL on the first ``val_rows`` validation rows. One iteration costs one to
    four passes over the training rows."""
    device = options.device
    with in_float64(joint):
        batches = StoreBatch(store, device, comm, torch.float64)
        optimizer, rule = polish_rule(joint, options.stop, batches.norm)
        return run_stage(
            joint,
            optimizer,
            batches,
            lambda: evaluate(
                joint, store_chunks(store, "validation", device, comm, options.val_rows), comm
            ),
            comm=comm,
            entropy=batches.entropy_bits,
            eval_every=1,
            **rule,
            max_iterations=options.polish,
            validate_first=True,
            on_error="stop",
            history=history,
            start=start,
        )


def trainable(joint: nn.Module) -> list[torch.Tensor]:
    """The joint model's parameters that are being learned."""
    return [p for p in joint.parameters() if p.requires_grad]
