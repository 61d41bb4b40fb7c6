"""Several starts: the same fit from different starting points, in parallel; the best kept.

A model with a near-mirror solution (lac: an activating CRP site and a repressing one
with the opposite matrix predict nearly the same ``t``, docs/fitting.md, "The
interaction energy G_I") ends in the optimum its start suggests. ``fit(..., starts=N)``
fits from N starting points and keeps the one with the lowest training NLL (the
likelihood; validation reads do not choose). Start 1 is the plain fit (the model file's
starts); start 2 flips the sign of every learned scalar ``energy`` (each interaction
started on both sides of zero); further starts take the other combinations of signs,
then the same again with the next seeds. A model with no scalar energy varies the seed
only. The caller's ``init`` is kept in every start (an energy the caller started is
never flipped, nor a held one).

Start 1 runs in this process; the others at the same time, each in a fresh interpreter
(``python -m bpm.runtime.multistart``: like the ``spawn`` context, but the caller's main
script is not imported again, so a script needs no ``__main__`` guard), at most
``os.cpu_count()`` fits at a time, each with one torch thread. Every start reads the
same split of the data (drawn from the fit's ``seed`` when the file has none). All
fits are full batch in memory: a streamed or distributed fit (``mode="stream"`` or
``"distributed"``, or an encoded :class:`~bpm.runtime.store.Store`) is an error, and
``mode="auto"`` fits a big file in memory too.

The result lists in ``optima`` every distinct optimum within
:data:`~bpm.runtime.optima.MARGIN_BITS` of the best (best first) and says so in
``notes`` (:mod:`bpm.runtime.optima`).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bpm.compiler.errors import BpmError

from . import contract
from .optima import optima, optima_notes, torch_state, train_nll
from .options import FitOptions
from .result import FitResult


def fit_many(model, data, options: FitOptions) -> FitResult:
    """Fit ``model`` to ``data`` from ``options.starts`` starting points at the same time;
    the fit with the lowest training NLL, with ``optima`` and ``notes`` filled in."""
    started = time.perf_counter()
    if options.mode in ("stream", "distributed") or _is_store(data):
        raise BpmError(
            f"several starts (starts={options.starts}) fit the data in memory, full batch; "
            "a streamed or distributed fit runs one start: use starts=1, or mode='full'"
        )
    cls, source, model_path = contract.resolve_model(model)
    plan = start_plan(cls(), options)
    jobs = [start_options(options, start) for start in plan]
    processes = max(1, min(len(plan), os.cpu_count() or 1) - 1)
    if not options.quiet:
        print(f"fitting {len(plan)} starts, {processes + 1} at a time", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bpm-starts-") as tmp:
        folder = Path(tmp)
        sendable = _sendable_model(model, cls, source, folder)
        shared = folder / "data.pkl"
        with open(shared, "wb") as handle:
            pickle.dump(str(data) if isinstance(data, (str, Path)) else data, handle)
        with ThreadPoolExecutor(processes) as pool:
            futures = [
                pool.submit(run_start, sendable, shared, job, folder / f"start{i + 2}")
                for i, job in enumerate(jobs[1:])
            ]
            first = _fit_here(model, data, jobs[0])
            fits = [record(first)] + [future.result() for future in futures]
    for start, fitted in zip(plan, fits, strict=True):
        fitted["start"] = start
    order = sorted(range(len(fits)), key=lambda i: (train_nll(fits[i]), i))
    best = fits[order[0]]
    result = first if order[0] == 0 else rebuild(cls, source, model_path, best, options.device)
    result.dataset = first.dataset
    ranked = [fits[i] for i in order]
    result.optima = optima(result.module, ranked)
    added = optima_notes(result.optima, ranked)
    result.notes = list(result.notes) + added
    result.wall_seconds = time.perf_counter() - started
    if not options.quiet:
        for note in added:
            print(f"note: {note}", file=sys.stderr)
    return result


def start_plan(module, options: FitOptions) -> list[dict]:
    """The starts: ``{"index", "seed", "init", "flipped"}`` each (``init``: the flipped
    scalar energies' starting values, kT, under the caller's ``init``).

    Start 1 is the plain fit; then every sign combination of the flippable energies
    (the learned scalar energies the caller neither started nor held: each starts at
    minus the file's ``init``, or minus :data:`~bpm.runtime.contract.ENERGY_START`, or
    at ``|ENERGY_START|`` where the file wrote 0), all of them flipped first; then the
    same with the next seed, and so on.
    """
    flippable = {}
    for name, slot in contract.layout(module).items():
        if slot.kind != "energy" or not slot.learned:
            continue
        if name in options.init or name in options.fix:
            continue
        value = contract.ENERGY_START if slot.init is None else float(slot.init)
        flippable[name] = -value if value != 0 else abs(contract.ENERGY_START)
    names = list(flippable)
    every = (1 << len(names)) - 1
    patterns = [0] + ([every] if every else []) + list(range(1, every))
    plan = []
    for index in range(options.starts):
        mask = patterns[index % len(patterns)]
        flipped = [name for bit, name in enumerate(names) if mask >> bit & 1]
        plan.append(
            {
                "index": index + 1,
                "seed": options.seed + index // len(patterns),
                "init": {name: flippable[name] for name in flipped},
                "flipped": flipped,
            }
        )
    return plan


def start_options(options: FitOptions, start: dict) -> FitOptions:
    """One start's options: one start, full batch, one thread, quiet, its seed, its
    flipped energies under the caller's ``init``, and the caller's data split."""
    return options.replace(
        starts=1,
        threads=1,
        mode="full",
        quiet=True,
        seed=start["seed"],
        init={**start["init"], **options.init},
        data_options={"seed": options.seed, **options.data_options},
    )


def run_start(model, data_file: Path, options: FitOptions, stem: Path) -> dict:
    """One start's fit in a fresh interpreter; its :func:`record`. ``model`` is
    ``("generated", path)`` of a generated module file, or a .bpm path or text;
    ``data_file`` a pickle of the data (or of their path)."""
    job, answer = stem.with_suffix(".job.pkl"), stem.with_suffix(".out.pkl")
    with open(job, "wb") as handle:
        pickle.dump((model, str(data_file), options), handle)
    command = [sys.executable, "-m", "bpm.runtime.multistart", str(job), str(answer)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not answer.exists():
        raise BpmError(f"a start's fit failed (seed {options.seed}):\n{done.stderr[-3000:]}")
    with open(answer, "rb") as handle:
        fitted = pickle.load(handle)
    if "error" in fitted:
        raise BpmError(fitted["error"])
    return fitted


def record(result: FitResult) -> dict:
    """What the parent keeps of a start's fit: parameters and measurement state as numpy
    arrays, metrics, history and the rest as plain values (picklable)."""
    return {
        "module_state": _numpy_state(result.module),
        "measurement_config": result.measurement.config(),
        "measurement_state": _numpy_state(result.measurement),
        "output": result.output,
        "metrics": result.metrics,
        "history": result.history,
        "steps": result.steps,
        "stages": result.stages,
        "convergence": result.convergence,
        "wall_seconds": result.wall_seconds,
        "seed": result.seed,
        "data_summary": result.data_summary,
        "sizes": result.sizes,
        "notes": result.notes,
        "data_path": result.data_path,
    }


def worker_main(job: str, answer: str) -> None:
    """A worker interpreter: read ``job`` (model, data file, options), fit, write the
    :func:`record` to ``answer`` (a model or data error as ``{"error": message}``)."""
    with open(job, "rb") as handle:
        model, data_file, options = pickle.load(handle)
    with open(data_file, "rb") as handle:
        data = pickle.load(handle)
    if isinstance(model, tuple):
        from .load import import_source

        model = import_source(Path(model[1]))
    try:
        fitted = record(_fit_here(model, data, options))
    except BpmError as error:
        fitted = {"error": str(error)}
    with open(answer, "wb") as handle:
        pickle.dump(fitted, handle)


# ---------------------------------------------------------------- plumbing


def _fit_here(model, data, options: FitOptions) -> FitResult:
    from .paths import fit_in_process

    return fit_in_process(model, data, options, path="full")


def rebuild(cls, source: str, model_path: str, fitted: dict, device: str) -> FitResult:
    """A worker's :func:`record` as a FitResult in this process (the parent's class);
    used for the best start here and for every model of :mod:`bpm.runtime.compare`."""
    from .load import build_measurement

    module = cls()
    module.load_state_dict(torch_state(fitted["module_state"]))
    measurement = build_measurement(fitted["measurement_config"])
    measurement.load_state_dict(torch_state(fitted["measurement_state"]))
    return FitResult(
        module=module.to(device),
        measurement=measurement.to(device),
        output=fitted["output"],
        metrics=fitted["metrics"],
        history=fitted["history"],
        steps=fitted["steps"],
        stages=fitted["stages"],
        convergence=fitted.get("convergence", {}),
        wall_seconds=fitted["wall_seconds"],
        seed=fitted["seed"],
        data_summary=fitted["data_summary"],
        sizes=fitted["sizes"],
        source=source,
        model_path=model_path,
        data_path=fitted["data_path"],
        notes=list(fitted["notes"]),
    )


def _sendable_model(model, cls, source: str, tmp: Path):
    """What a worker rebuilds the model from: the generated source written to ``tmp``
    (generated classes do not pickle; importing it spares the worker the compiler, about
    2 s), else the .bpm text or path as given."""
    if source:
        path = tmp / "model.py"
        path.write_text(source)
        return ("generated", str(path))
    if isinstance(model, (str, Path)):
        return str(model)
    raise BpmError(f"several starts need the model's source; {cls.__name__} has none")


def _numpy_state(module) -> dict:
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def _is_store(data) -> bool:
    from .store import Store

    return isinstance(data, Store)


if __name__ == "__main__":
    worker_main(*sys.argv[1:3])
