"""The float64 L-BFGS polish that follows Adam, on the full training batch or on a store.

Adam's one-cycle schedule leaves a fit short of the optimum along its flat directions; a
quasi-Newton method follows them. Float32 L-BFGS stalls once its line search can no
longer resolve the changes along them (docs/fitting.md), so the stage runs in float64.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .optimizers import LBFGS, STALL_NATS
from .options import FitOptions
from .sources import Comm, FullBatch, StoreBatch, store_chunks, tensor_chunks
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


def polish_rule(joint: Joint, stop: str, reads: float) -> tuple[LBFGS, dict]:
    """The polish's L-BFGS and its stopping rule for :func:`~bpm.runtime.train.run_stage`:
    on the validation reads (best validated state, 3 checks of patience) or, for
    ``stop="training"``, at the training optimum (the last state, ended by L-BFGS's own
    tolerances or once the training NLL, ``reads`` reads, stalls: ``STALL_NATS``)."""
    if stop == "training":
        optimizer = LBFGS(trainable(joint), stall=STALL_NATS / max(reads, 1.0))
        return optimizer, {"patience": 10**9, "min_delta": -math.inf}
    return LBFGS(trainable(joint)), {"patience": 3, "min_delta": 1e-6}


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
