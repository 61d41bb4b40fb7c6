"""A fit in one process: the full-batch path and the minibatch path.

Both start the module and the measurement process the same way
(:mod:`~bpm.runtime.start`), run the same training core (:mod:`~bpm.runtime.train`)
and return the same :class:`~bpm.runtime.result.FitResult`; they differ in where the
batches come from (:mod:`~bpm.runtime.sources`) and in how the float64 polish
(:mod:`~bpm.runtime.polish`) reads the training rows. With several processes, each runs
the minibatch path on its share (:mod:`~bpm.runtime.distributed`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from bpm.compiler.errors import BpmError

from . import contract
from .contract import resolve_model
from .data import SPLITS, Dataset
from .measurement_kinds import prediction_metrics, split_entropy, start_for
from .observations import describe, read_observations
from .optimizers import AdamOneCycle
from .options import FitOptions
from .polish import polish_held, polish_stored, trainable
from .progress import Stopwatch, phase
from .result import FitResult
from .sources import Comm, FullBatch, Minibatches, ShuffledRows, store_chunks, tensor_chunks
from .start import hold, pin_consensus, start_module
from .train import (
    Joint,
    convergence,
    deterministic,
    evaluate,
    gradient_norm,
    not_converged_note,
    run_stage,
)

#: Full-batch defaults that FitOptions leaves to the path (None there).
FULL_STEPS = 200
FULL_EVAL_EVERY = 10
#: Training splits this large are stepped through in minibatches by Adam, in memory.
#: Their defaults, measured on GB1 (docs/continuous.md): 4,096 rows a step, 60 epochs at
#: learning rate 0.05 gave test I_var 2.316 bits in 50 s of training; 40 epochs at 0.02,
#: 2.259; 60 at 0.1, 2.310; 100 at 0.05, 2.313.
MINIBATCH_ROWS = 100_000
MINIBATCH_BATCH = 4096
MINIBATCH_EPOCHS = 60
MINIBATCH_LR = 0.05
STREAM_EVAL_EVERY = 200


def fit_in_process(model, data, options: FitOptions, *, path: str, comm: Comm | None = None):
    """The fit in this process: full batch, or minibatches (this process's share of them
    when ``comm`` says it is one of several)."""
    started = time.perf_counter()
    clock = Stopwatch()
    comm = comm or Comm()
    device = str(options.device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BpmError("device 'cuda' requested but torch sees no CUDA device")
    cls, source, model_path = resolve_model(model)
    clock.lap("compile")
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
        clock.lap("setup")
        fitted = run(module, output, data, data_options, options, comm, clock)
    for note in fitted.get("notes", []):
        notes = [*notes, note]
        if not options.quiet and comm.rank == 0:
            print(f"note: {note}", file=sys.stderr)
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
        phase_seconds=clock.seconds,
    )


def _full_batch(module, output, data, data_options, options, comm, clock) -> dict:
    dataset = read_observations(data, **data_options)
    clock.lap("read")
    if not options.quiet and comm.rank == 0:
        print(f"measurement: {describe(dataset.summary)}", file=sys.stderr)
    sizes = dataset.sizes()
    _need_training_and_validation(sizes)
    device = options.device
    tensors = {s: split_tensors(dataset, s, device) for s in SPLITS}
    entropies = {s: split_entropy(dataset.kind, tensors[s][1], options.seed) for s in SPLITS}
    clock.lap("encode")
    train = dataset.subset("training")
    x_train, obs_train = tensors["training"]
    joint, held, hooks = _start(module, output, options, train, x_train, obs_train, dataset.kind)
    batches, adam = _adam_batches(joint, x_train, obs_train, entropies["training"], options)
    clock.lap("start")
    history: list[dict] = []
    val_chunks = tensor_chunks(*tensors["validation"])
    stages = [
        _adam_stage(
            joint,
            adam,
            batches,
            batches.steps,
            adam.eval_every,
            lambda: evaluate(joint, val_chunks, entropy=entropies["validation"]),
            history,
        )
    ]
    clock.lap("adam")
    minibatched = isinstance(batches, ShuffledRows)
    show = not options.quiet and comm.rank == 0
    if options.polish > 0 and (not minibatched or "polish" in options.given):
        stages.extend(
            polish_held(
                joint,
                tensors["training"],
                tensors["validation"],
                options,
                history,
                start=stages[0].iterations,
                entropies=(entropies["training"], entropies["validation"]),
                show=show,
            )
        )
        clock.lap("polish")
    phase(show, "evaluating", "the training, validation and test splits")
    grad = _finish(joint, held, hooks, tensor_chunks(*tensors["training"]))
    metrics = {
        s: evaluate(joint, tensor_chunks(*tensors[s]), entropy=entropies[s])
        | prediction_metrics(joint, *tensors[s], seed=options.seed)
        for s in SPLITS
    }
    clock.lap("evaluating")
    return {
        "measurement": joint.measurement,
        "metrics": metrics,
        "history": history,
        "stages": stages,
        "gradient_norm": grad,
        "notes": getattr(batches, "notes", []),
        "summary": dataset.summary,
        "sizes": sizes,
        "dataset": dataset,
    }


def _adam_batches(joint, x, obs, entropy, options: FitOptions):
    """The Adam stage's batches in memory and the options it runs with: the whole
    training split at every step (``FULL_STEPS``), or for a split of
    ``MINIBATCH_ROWS`` rows or more (unless ``steps`` is given) shuffled minibatches of
    ``batch_size`` rows (``MINIBATCH_BATCH`` unless given) for ``epochs`` passes
    (``MINIBATCH_EPOCHS``), at learning rate
    ``MINIBATCH_LR`` unless one is given, checked once an epoch, and no L-BFGS polish
    unless ``polish`` is given (on the 477,854 GB1 training sequences one float64
    L-BFGS iteration costs more than an epoch; 300 of them took 412 s and gained
    0.02 bits). An epoch of minibatches costs about what two full-batch steps cost and
    gains far more (docs/continuous.md)."""
    if len(x) < MINIBATCH_ROWS or options.steps is not None:
        steps = options.steps or FULL_STEPS
        norm = float(joint.measurement.weight(obs).sum())
        batches = FullBatch(x, obs, steps, norm, entropy)
        batches.notes = [
            f"option {name}={getattr(options, name)!r} does not apply to a full-batch fit "
            f"of {len(x)} training rows (minibatches from {MINIBATCH_ROWS:,} rows, unless "
            "steps is given); ignored"
            for name in ("batch_size", "epochs")
            if name in options.given and getattr(options, name) != FitOptions().__dict__[name]
        ]
        return batches, options.replace(eval_every=options.eval_every or FULL_EVAL_EVERY)
    size = options.batch_size if "batch_size" in options.given else MINIBATCH_BATCH
    batches = ShuffledRows(
        x, obs, batch_size=size, epochs=options.epochs or MINIBATCH_EPOCHS,
        seed=options.seed, weight=joint.measurement.weight, entropy=entropy,
    )  # fmt: skip
    every = options.eval_every or batches.steps_per_epoch
    lr = options.lr if "lr" in options.given else MINIBATCH_LR
    return batches, options.replace(eval_every=every, lr=lr)


def _minibatch(module, output, data, data_options, options, comm, clock) -> dict:
    from .store import Store, encode_file

    if isinstance(data, Store):
        store = data
    else:
        store = encode_file(
            data, cache_dir=options.cache_dir, quiet=options.quiet or comm.rank != 0, **data_options
        )
    clock.lap("encode")
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
    sample = Dataset(
        np.array([]), batches.sample_codes, batches.sample_counts.astype(np.int64),
        np.array([]), store.alphabet, tuple(store.bin_names),
    )  # fmt: skip
    totals = torch.tensor(batches.bin_totals, dtype=torch.float32)[None, :]
    joint, held, hooks = _start(module, output, options, sample, batches.sample, totals)
    clock.lap("start")
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
    clock.lap("adam")
    show = not options.quiet and comm.rank == 0
    if options.polish > 0:
        started = time.perf_counter()
        stages.extend(polish_stored(joint, store, comm, options, history, stage.iterations, show))
        polish_seconds = time.perf_counter() - started
        clock.lap("polish")
    phase(show, "evaluating", "the training, validation and test splits")
    grad = _finish(joint, held, hooks, store_chunks(store, "training", device, comm), comm)
    metrics = {s: evaluate(joint, store_chunks(store, s, device, comm), comm) for s in SPLITS}
    clock.lap("evaluating")
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


def _start(module, output, options, train, x_sample, obs, kind="sortseq"):
    """Starting values, the measurement process (``obs``: the training observations, or
    for a sort the reads per bin as one row), held and pinned parameters; ``train`` is
    the training Dataset (or a sample of it)."""
    if options.from_data and kind == "continuous":
        raise BpmError("from_data starts matrices from sort bins or count pairs, not scores")
    start_module(
        module,
        options.init,
        **({"codes": train.codes, "counts": train.counts} if options.from_data else {}),
        spread=options.spread,
        consensus_energy=options.consensus_energy,
    )
    with torch.no_grad():
        t0 = contract.select_output(module(x_sample), output)
    measurement = start_for(kind, t0, obs, options)
    held = hold(module, options.fix)
    hooks = pin_consensus(module, train.codes) if options.pin else []
    return Joint(module, measurement, output), held, hooks


def _adam_stage(joint, options, batches, steps, eval_every, validate, history, **extra):
    restandardize_step = max(1, int(options.restandardize_at * steps))

    def before_step(step: int) -> None:
        if step == restandardize_step:
            with torch.no_grad():
                joint.measurement.restandardize(joint.t(batches.sample))

    return run_stage(
        joint,
        AdamOneCycle(trainable(joint), options.lr, steps),
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
    """A dataset split's codes and counts as tensors on ``device``, row after row (what
    minibatches draw rows from; each batch and evaluation chunk is then laid out column
    after column, :func:`~bpm.runtime.sources.column_major`)."""
    part = dataset.subset(split)
    x = torch.from_numpy(part.codes.astype(np.int64)).to(device)
    c = torch.from_numpy(part.counts.astype(np.float32)).to(device)
    return x, c
