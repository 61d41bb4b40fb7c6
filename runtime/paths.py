"""A fit in one process: the full-batch path and the minibatch path.

Both start the module and the measurement process the same way
(:mod:`~bpm.runtime.start`), run the same training core (:mod:`~bpm.runtime.train`)
and return the same :class:`~bpm.runtime.result.FitResult`; they differ in where the
batches come from (:mod:`~bpm.runtime.sources`) and in the float64 L-BFGS polish, which
needs the whole training batch. With several processes, each runs the minibatch path on
its share (:mod:`~bpm.runtime.distributed`).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bpm.compiler.errors import BpmError

from . import contract
from .contract import resolve_model
from .data import SPLITS, read_dataset
from .optimizers import LBFGS, STALL_NATS, AdamOneCycle
from .options import FitOptions
from .result import FitResult
from .sources import Comm, FullBatch, Minibatches, StoreBatch, store_chunks, tensor_chunks
from .start import hold, pin_consensus, start_measurement, start_module
from .train import (
    Joint,
    convergence,
    deterministic,
    evaluate,
    gradient_norm,
    in_float64,
    not_converged_note,
    run_stage,
)

#: Full-batch defaults that FitOptions leaves to the path (None there).
FULL_STEPS = 200
FULL_EVAL_EVERY = 10
STREAM_EVAL_EVERY = 200


def fit_in_process(model, data, options: FitOptions, *, path: str, comm: Comm | None = None):
    """The fit in this process: full batch, or minibatches (this process's share of them
    when ``comm`` says it is one of several)."""
    started = time.perf_counter()
    comm = comm or Comm()
    device = str(options.device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BpmError("device 'cuda' requested but torch sees no CUDA device")
    cls, source, model_path = resolve_model(model)
    output = contract.choose_output(cls, options.output)
    if getattr(cls, "alphabet", None) is None:
        raise BpmError(f"model '{cls.name}' has no sequence; there is nothing to fit to reads")
    notes = options.notes("full" if path == "full" else "stream")
    if not options.quiet and comm.rank == 0:
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
    data_options = {
        "alphabet": cls.alphabet,
        "length": cls.sequence_length,
        "seed": options.seed,
        **options.data_options,
    }
    run = _full_batch if path == "full" else _minibatch
    with deterministic(options.seed, options.threads if device == "cpu" else None):
        module = cls().to(device)
        fitted = run(module, output, data, data_options, options, comm)
    converged = convergence(fitted["stages"], fitted["gradient_norm"])
    if not converged["converged"]:
        note = not_converged_note(converged)
        notes = [*notes, note]
        if not options.quiet and comm.rank == 0:
            print(f"warning: {note}", file=sys.stderr)
    return FitResult(
        module=module,
        measurement=fitted["measurement"],
        output=output,
        metrics=fitted["metrics"],
        history=fitted["history"],
        steps=sum(s.iterations for s in fitted["stages"]),
        stages=[s.as_dict() for s in fitted["stages"]],
        convergence=converged,
        wall_seconds=time.perf_counter() - started,
        seed=options.seed,
        data_summary=fitted["summary"],
        sizes=fitted["sizes"],
        source=source,
        model_path=model_path,
        data_path=str(data) if isinstance(data, (str, Path)) else fitted.get("data_path", ""),
        notes=notes,
        dataset=fitted.get("dataset"),
    )


def _full_batch(module, output, data, data_options, options, comm) -> dict:
    dataset = read_dataset(data, **data_options)
    sizes = dataset.sizes()
    _need_training_and_validation(sizes)
    device = options.device
    tensors = {s: split_tensors(dataset, s, device) for s in SPLITS}
    train = dataset.subset("training")
    joint, held, hooks = _start(
        module,
        output,
        options,
        train.codes,
        train.counts,
        tensors["training"][0],
        tensors["training"][1].sum(0),
    )
    steps = options.steps or FULL_STEPS
    batches = FullBatch(*tensors["training"], steps)
    history: list[dict] = []
    stages = [
        _adam_stage(
            joint,
            options,
            batches,
            steps,
            options.eval_every or FULL_EVAL_EVERY,
            lambda: evaluate(joint, tensor_chunks(*tensors["validation"])),
            history,
        )
    ]
    if options.polish > 0:
        stages.append(
            polish(
                joint,
                tensors["training"],
                tensors["validation"],
                options.polish,
                history,
                start=stages[0].iterations,
                stop=options.stop,
            )
        )
    grad = _finish(joint, held, hooks, tensor_chunks(*tensors["training"]))
    metrics = {s: evaluate(joint, tensor_chunks(*tensors[s])) for s in SPLITS}
    return {
        "measurement": joint.measurement,
        "metrics": metrics,
        "history": history,
        "stages": stages,
        "gradient_norm": grad,
        "summary": dataset.summary,
        "sizes": sizes,
        "dataset": dataset,
    }


def _minibatch(module, output, data, data_options, options, comm) -> dict:
    from .store import Store, encode_file

    if isinstance(data, Store):
        store = data
    else:
        store = encode_file(
            data, cache_dir=options.cache_dir, quiet=options.quiet or comm.rank != 0, **data_options
        )
    sizes = store.sizes()
    _need_training_and_validation(sizes)
    device = options.device
    batches = Minibatches(
        store,
        batch_size=options.batch_size,
        block_rows=options.block_rows,
        epochs=options.epochs,
        max_steps=options.steps,
        seed=options.seed,
        comm=comm,
        device=device,
    )
    joint, held, hooks = _start(
        module,
        output,
        options,
        batches.sample_codes,
        batches.sample_counts.astype(np.int64),
        batches.sample,
        torch.tensor(batches.bin_totals, dtype=torch.float32),
    )
    trained = joint
    if comm.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ids = [torch.device(device).index] if str(device).startswith("cuda") else None
        trained = DistributedDataParallel(joint, device_ids=ids)
    eval_every = max(1, min(options.eval_every or STREAM_EVAL_EVERY, batches.steps_per_epoch))
    history: list[dict] = []
    eval_seconds: list[float] = []

    def validate() -> dict:
        started = time.perf_counter()
        chunks = store_chunks(store, "validation", device, comm, options.val_rows)
        found = evaluate(joint, chunks, comm)
        eval_seconds.extend([0.0] * (len(batches.epoch_rows) - len(eval_seconds)))
        eval_seconds[-1] += time.perf_counter() - started
        return found

    stage = _adam_stage(
        joint,
        options,
        batches,
        batches.steps,
        eval_every,
        validate,
        history,
        trained=trained,
        comm=comm,
    )
    eval_seconds.extend([0.0] * (len(batches.epoch_rows) - len(eval_seconds)))
    stages = [stage]
    if options.polish > 0:
        started = time.perf_counter()
        stages.append(polish_store(joint, store, comm, options, history, start=stage.iterations))
        polish_seconds = time.perf_counter() - started
    grad = _finish(joint, held, hooks, store_chunks(store, "training", device, comm), comm)
    metrics = {s: evaluate(joint, store_chunks(store, s, device, comm), comm) for s in SPLITS}
    summary = dict(store.summary)
    summary["training"] = {
        "mode": "stream",
        "processes": comm.world,
        "batch_rows": batches.per_batch * batches.block_rows,
        "block_rows": batches.block_rows,
        "steps_per_epoch": batches.steps_per_epoch,
        "epoch_rows": batches.epoch_rows,  # training rows stepped on in each epoch
        "epoch_seconds": [round(s, 4) for s in batches.epoch_seconds],
        "eval_seconds": [round(s, 4) for s in eval_seconds],  # validation, within each epoch
        "polish_seconds": round(polish_seconds, 4) if options.polish > 0 else 0.0,
        "store": str(store.path),
    }
    return {
        "measurement": joint.measurement,
        "metrics": metrics,
        "history": history,
        "stages": stages,
        "gradient_norm": grad,
        "summary": summary,
        "sizes": sizes,
        "data_path": str(store.path),
    }


def polish(
    joint: Joint, train, val, iterations: int, history: list, start: int = 0, stop="validation"
):
    """At most ``iterations`` L-BFGS iterations in float64 on the full training batch
    (``train`` and ``val`` are ``(codes, counts)`` tensors), from the current state.

    Adam's one-cycle schedule leaves the fit short of the optimum along its flat
    directions; a quasi-Newton method follows them. Float32 L-BFGS stalls once its line
    search can no longer resolve the changes along them (docs/fitting.md), so the stage
    runs in float64. It keeps the best validated state and stops after 3 checks (every
    10 iterations) without improvement, or on L-BFGS's own tolerances. With
    ``stop="training"`` it runs to the training optimum instead (:func:`polish_rule`).
    """
    with in_float64(joint):
        batches = FullBatch(train[0], train[1].double(), None)
        chunks = tensor_chunks(val[0], val[1].double())
        optimizer, rule = polish_rule(joint, stop, batches.norm)
        return run_stage(
            joint,
            optimizer,
            batches,
            lambda: evaluate(joint, chunks),
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
        optimizer = LBFGS(_trainable(joint), stall=STALL_NATS / max(reads, 1.0))
        return optimizer, {"patience": 10**9, "min_delta": -math.inf}
    return LBFGS(_trainable(joint)), {"patience": 3, "min_delta": 1e-6}


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


def _start(module, output, options, codes, counts, x_sample, bin_totals):
    """Starting values, the measurement process, held and pinned parameters."""
    start_module(
        module,
        options.init,
        **({"codes": codes, "counts": counts} if options.from_data else {}),
        spread=options.spread,
        consensus_energy=options.consensus_energy,
    )
    with torch.no_grad():
        t0 = contract.select_output(module(x_sample), output)
    measurement = start_measurement(
        t0,
        bin_totals,
        hidden=options.hidden,
        transform=options.transform,
        link=options.link,
        gates=options.gates,
        learn_slope=options.learn_slope,
    )
    held = hold(module, options.fix)
    hooks = pin_consensus(module, codes) if options.pin else []
    return Joint(module, measurement, output), held, hooks


def _adam_stage(joint, options, batches, steps, eval_every, validate, history, **extra):
    restandardize_step = max(1, int(options.restandardize_at * steps))

    def before_step(step: int) -> None:
        if step == restandardize_step:
            with torch.no_grad():
                joint.measurement.restandardize(joint.t(batches.sample))

    return run_stage(
        joint,
        AdamOneCycle(_trainable(joint), options.lr, steps),
        batches,
        validate,
        entropy=batches.entropy_bits,
        eval_every=eval_every,
        patience=options.patience,
        patience_after=restandardize_step,
        max_iterations=steps,
        before_step=before_step,
        history=history,
        progress=(not options.quiet, steps),
        **extra,
    )


def _trainable(joint: nn.Module) -> list[torch.Tensor]:
    return [p for p in joint.parameters() if p.requires_grad]


def _finish(joint, held, hooks, train_chunks, comm=None) -> float:
    """End of training: unpin the consensus letters, take the training NLL's gradient
    norm (every learned entry, pinned letters too; fixed ones still held), release the
    fixed ones."""
    for hook in hooks:
        hook.remove()
    grad = gradient_norm(joint, train_chunks, comm)
    for tensor in held:
        tensor.requires_grad_(True)
    return grad


def _need_training_and_validation(sizes: dict) -> None:
    if sizes["training"] == 0 or sizes["validation"] == 0:
        raise BpmError(f"need training and validation reads; the split gives {sizes}")


def split_tensors(dataset, split: str, device):
    """A dataset split's codes and counts as tensors on ``device``."""
    part = dataset.subset(split)
    x = torch.from_numpy(part.codes.astype(np.int64)).to(device)
    c = torch.from_numpy(part.counts.astype(np.float32)).to(device)
    return x, c
