"""What the data determine: profile-likelihood intervals after a fit (issue 12).

:func:`identifiability` profiles, on the training reads of a full-batch fit,

- each site energy's scale, ``identifiability.energy_scale.<site>``: a multiplier ``m``
  on its sequence-dependent part (the table in the zero-mean gauge, with its neighbor or
  pairwise table), the offset free;
- each learned scalar energy's value, ``identifiability.profile.<name>``, in kT (and
  kcal/mol);

each point a warm-started float64 refit of everything else, the module and the
measurement process, by L-BFGS or, for a fit finished by Newton, Newton
(:mod:`~bpm.runtime.identifiability_profile`). The 95% interval is
where twice the rise of the total training NLL (nats, every read) stays within 3.84. A
side is open (``null``) when the profile stays within that level out to the search
limit, or when the refit beyond the last point inside had not settled at its cap (a
point still falling bounds nothing). A refit below the fit's own NLL means the fit was
not at the training optimum; :func:`identifiability` says so and gives the better NLL.

Quantities run in parallel from one queue: this process and worker interpreters, each
started once (``python -m bpm.runtime.identifiability``), at most ``os.cpu_count()`` (or
``FitOptions.processes`` when larger) at a time, one torch thread each.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bpm.compiler.errors import BpmError

from . import contract
from .identifiability_profile import Target, interval, run_profile, targets
from .progress import phase
from .train import snapshot

#: A refit this much (total nats) below the fit's NLL means the fit was not at the optimum.
OPTIMUM_TOL_NATS = 0.1
#: Intervals wider than this are put in words: scales beyond +-25%, energies beyond +-1 kT.
WIDE_SCALE = 0.25
WIDE_ENERGY = 1.0


def identifiability(
    result, *, names=None, processes: int | None = None, dispersion: float = 1.0
) -> dict:
    """Profile intervals of a fit whose data are in memory (``result.dataset``); the
    ``identifiability`` record of summary.json (see the module text). ``names`` limits
    the quantities; ``processes`` how many run at a time (default ``os.cpu_count()``);
    ``dispersion`` widens the level for reads that overstate their information
    (:class:`~bpm.runtime.options.FitOptions`). The refits run as the fit's polish did:
    Newton where it had a Newton stage, else L-BFGS."""
    started = time.perf_counter()
    if result.dataset is None:
        raise BpmError("identifiability needs the fit's reads in memory (a full-batch fit)")
    module = result.module
    finish = "newton" if any(s["stage"] == "newton" for s in result.stages) else "lbfgs"
    chosen = targets(module, names, dispersion, finish)
    train = result.dataset.subset("training")
    shared = {
        "module_state": snapshot(module),
        "measurement_config": result.measurement.config(),
        "measurement_state": snapshot(result.measurement),
        "output": result.output,
        "codes": np.asarray(train.codes, dtype=np.uint8),
        "counts": np.asarray(train.counts, dtype=np.float64),
    }
    parallel = max(1, min(len(chosen), processes or os.cpu_count() or 1))
    found = run_all(chosen, shared, type(module), result.source, parallel)
    kT = contract.kT_kcal_per_mol(module)
    out = {
        "level": 0.95,
        "likelihood": "training reads: total NLL in nats; bound where 2 dNLL = 3.84 x dispersion",
        "dispersion": float(dispersion),
        "energy_scale": {},
        "profile": {},
    }
    for target in chosen:
        entry = summarize(target, found[target.name], kT)
        out["energy_scale" if target.kind == "scale" else "profile"][target.name] = entry
    fit_nll = min(f["fit_nll"] for f in found.values())
    best = min(found.values(), key=lambda f: min(n for _, n in f["points"]))
    value, nll = min(best["points"], key=lambda p: p[1])
    out["fit_nll"] = fit_nll
    out["at_optimum"] = bool(nll > fit_nll - OPTIMUM_TOL_NATS)
    if not out["at_optimum"]:
        out["better"] = {"quantity": best["name"], "value": value, "nll": nll}
    out["notes"] = notes(out, kT)
    out["processes"] = parallel
    out["seconds"] = round(time.perf_counter() - started, 3)
    return out


def summarize(target: Target, found: dict, kT: float) -> dict:
    """One quantity's entry: ``estimate``, ``low``, ``high`` (None: open), why each side
    ended, the profile's lowest point, the search limits, the points evaluated, and
    whether the refit at the estimate settled."""
    ends = interval(found["points"], target.rise)
    low_nll = ends["minimum_nll"]
    entry = {
        "estimate": target.estimate,
        "low": ends["low"],
        "high": ends["high"],
        "units": "multiplier on the fitted table" if target.kind == "scale" else "kT",
        "open": {
            side: _why_open(found["sides"][side], target, side)
            for side in ("low", "high")
            if ends[side] is None
        },
        "profile_minimum": ends["minimum"],
        "search_limits": [target.lower, target.upper],
        "points": [[v, n - low_nll] for v, n in sorted(found["points"])],
        "rise_nats": target.rise,
        "refit_iterations": found["iterations"],
        "settled_at_estimate": found["settled"],
    }
    if target.kind == "energy":
        for key in ("estimate", "low", "high"):
            value = entry[key]
            entry[f"{key}_kcal_per_mol"] = None if value is None else value * kT
    return entry


def _why_open(side: str, target: Target, where: str) -> str:
    limit = target.lower if where == "low" else target.upper
    if side == "unsettled":
        return "the refits past the last point inside were still falling at their cap"
    if side == "limit":
        return f"within the 95% level out to the search limit {limit:g}"
    return "the refits allowed (points, iterations) ended before the 95% level"


def notes(found: dict, kT: float) -> list[str]:
    """Words for every wide or open interval, and for a fit found short of its optimum."""
    out = []
    for name, e in found["energy_scale"].items():
        if e["low"] is None or e["high"] is None or max(1 - e["low"], e["high"] - 1) > WIDE_SCALE:
            out.append(
                f"the data fix the {name} table's overall size only to {_span(e, '{:.2f}')} "
                "times its fitted size (95% profile interval): its shape, not its size"
            )
    for name, e in found["profile"].items():
        x = e["estimate"]
        if e["low"] is None or e["high"] is None or max(x - e["low"], e["high"] - x) > WIDE_ENERGY:
            kcal = {k: (None if e[k] is None else e[k] * kT) for k in ("low", "high")}
            out.append(
                f"{name} is determined only to {_span(e, '{:.2f}')} kT "
                f"({_span({**e, **kcal}, '{:.2f}')} kcal/mol; 95% profile interval, "
                f"fitted {x:.2f} kT)"
            )
    if not found["at_optimum"]:
        better = found["better"]
        out.append(
            f"the fit is not at the training optimum: a refit with {better['quantity']} "
            f"held at {better['value']:.3g} lowers the training NLL by "
            f"{found['fit_nll'] - better['nll']:.2f} nats; the intervals are those of "
            "the refitted profile, not of the fit"
        )
    return out


def _span(entry: dict, fmt: str) -> str:
    low = "(not bounded below)" if entry["low"] is None else fmt.format(entry["low"])
    high = "(not bounded above)" if entry["high"] is None else fmt.format(entry["high"])
    return f"{low} to {high}"


def attach(result, options) -> None:
    """The front door's hook: set ``result.identifiability`` (full-batch fits; others get
    a note), add its words to ``result.notes`` and print them unless quiet."""
    if result.dataset is None:
        words = ["identifiability needs the reads in memory; a streamed fit has none"]
    else:
        cap = options.processes if options.processes > 1 else None
        what = "profile-likelihood intervals of each matrix's scale and each scalar energy"
        phase(not options.quiet, "identifiability", what)
        result.identifiability = identifiability(
            result, processes=cap, dispersion=options.dispersion
        )
        words = result.identifiability["notes"]
    result.notes = [*result.notes, *words]
    if not options.quiet:
        for note in words:
            print(f"note: {note}", file=sys.stderr)


# ---------------------------------------------------------------- running in parallel


def run_all(chosen, shared: dict, cls, source: str, parallel: int) -> dict[str, dict]:
    """Every target's :func:`run_profile`, ``parallel`` at a time: this process and
    ``parallel - 1`` worker interpreters, each started once and handed targets from one
    queue as it finishes the last."""
    queue, lock, found = list(reversed(chosen)), threading.Lock(), {}

    def take():
        with lock:
            return queue.pop() if queue else None

    def here():
        while (target := take()) is not None:
            found[target.name] = profile_here(shared, cls, target)

    def there(folder: Path):
        with Worker(folder) as worker:
            while (target := take()) is not None:
                found[target.name] = worker.profile(target)

    if parallel == 1:
        here()
        return found
    if not source:
        raise BpmError(f"profiles in parallel need the model's source; {cls.__name__} has none")
    with tempfile.TemporaryDirectory(prefix="bpm-identifiability-") as tmp:
        folder = Path(tmp)
        (folder / "model.py").write_text(source)
        with open(folder / "shared.pkl", "wb") as handle:
            pickle.dump(shared, handle)
        with ThreadPoolExecutor(parallel - 1) as pool:
            futures = [pool.submit(there, folder) for _ in range(parallel - 1)]
            here()
            for future in futures:
                future.result()
    return found


def profile_here(shared: dict, cls, target: Target) -> dict:
    """:func:`run_profile` in this process, on fresh copies of the fitted module and
    measurement process, with one torch thread."""
    import torch

    from .load import build_measurement
    from .train import deterministic

    module = cls()
    module.load_state_dict(shared["module_state"])
    measurement = build_measurement(shared["measurement_config"])
    measurement.load_state_dict(shared["measurement_state"])
    with deterministic(0, 1), torch.enable_grad():
        return run_profile(
            module, measurement, shared["output"], shared["codes"], shared["counts"], target
        )


class Worker:
    """A worker interpreter (:func:`worker_main`) started once: :meth:`profile` hands it
    one target's job file on its standard input and waits for its answer file."""

    def __init__(self, folder: Path):
        self.folder = folder
        command = [sys.executable, "-m", "bpm.runtime.identifiability", str(folder)]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def profile(self, target: Target) -> dict:
        job = self.folder / f"{target.name}.job.pkl"
        with open(job, "wb") as handle:
            pickle.dump(target, handle)
        self.process.stdin.write(f"{job}\n")
        self.process.stdin.flush()
        answer = Path(self.process.stdout.readline().strip())
        if not answer.name or not answer.exists():
            self.process.kill()
            _, err = self.process.communicate()
            raise BpmError(f"the profile of {target.name} failed:\n{err[-3000:]}")
        with open(answer, "rb") as handle:
            return pickle.load(handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.communicate("")  # end of input: the worker exits
        return False


def worker_main(folder: str) -> None:
    """A worker interpreter: for each job file named on standard input, the profile of
    its target, written beside it; the answer's path on standard output."""
    from .load import import_source

    folder_path = Path(folder)
    cls = import_source(folder_path / "model.py")
    with open(folder_path / "shared.pkl", "rb") as handle:
        shared = pickle.load(handle)
    for line in sys.stdin:
        job_path = Path(line.strip())
        with open(job_path, "rb") as handle:
            target = pickle.load(handle)
        found = profile_here(shared, cls, target)
        answer = job_path.with_name(f"{target.name}.out.pkl")
        with open(answer, "wb") as handle:
            pickle.dump(found, handle)
        print(answer, flush=True)


if __name__ == "__main__":
    worker_main(sys.argv[1])
