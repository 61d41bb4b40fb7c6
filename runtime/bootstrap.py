"""The bootstrap: the same fit, refitted on resamples of the training sequences.

``fit(..., bootstrap=N)`` (``bpm fit --bootstrap N``) refits the model N times, each
time on a resample of the training sequences drawn with replacement (a sequence's
reads stay with it, so reads of one cell or one sequence move together; validation
and test rows are untouched), with the same options, the model's parameters started
at the fitted values (the measurement process restarts as in any fit, on the starting
outputs). The spread of the refits gives standard errors and 95% percentile intervals
of every reported quantity, in the report's gauge
(:mod:`bpm.runtime.bootstrap_report`), without assuming the curvature of the
likelihood is a covariance: they exist where :mod:`bpm.runtime.uncertainty` reports
"not at an optimum", and they measure the spread of the estimator the fit actually is
(early-stopped or not).

The refits run at the same time in fresh interpreters, as the starts of
:mod:`bpm.runtime.multistart` do (:func:`~bpm.runtime.multistart.run_start`, one torch
thread each): ``options.processes`` at a time when given (with ``mode="full"``),
otherwise one per CPU. Replicate ``k`` resamples with ``numpy.random.default_rng((seed,
k))``: the same seed gives the same refits.
"""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from bpm.compiler.errors import BpmError

from . import contract
from .bootstrap_report import LEVEL
from .multistart import record, run_start
from .optima import torch_state
from .options import FitOptions


@dataclass
class Bootstrap:
    """The refits of a bootstrap, each as the module's parameters in natural units.

    ``replicates``: one ``get_params()``-shaped mapping of numpy arrays (kT for
    energies; matrices as the module stores them) per refit that finished, in replicate
    order; ``requested``: how many were asked for; ``failed``: a message per refit that
    did not; ``converged``: what each finished refit said of itself; ``seed``,
    ``seconds`` (wall, all refits) and ``notes`` (words for the fit's notes).
    """

    replicates: list[dict]
    requested: int
    failed: list[str] = field(default_factory=list)
    converged: list[bool] = field(default_factory=list)
    seed: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def values(self, name: str) -> np.ndarray:
        """Parameter ``name`` over the refits: ``[replicates, *shape]``."""
        return np.stack([np.asarray(r[name], dtype=float) for r in self.replicates])

    def standard_error(self, values: np.ndarray) -> np.ndarray:
        """The bootstrap standard error (sd over refits, ``ddof=1``) of ``values``
        ``[replicates, ...]``; ``nan`` with fewer than two refits."""
        if len(values) < 2:
            return np.full(values.shape[1:], np.nan)
        return values.std(axis=0, ddof=1)

    def interval(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The :data:`LEVEL` percentile interval ``(low, high)`` of ``values``."""
        if len(values) < 2:
            empty = np.full(values.shape[1:], np.nan)
            return empty, empty
        tail = 100 * (1 - LEVEL) / 2
        return np.percentile(values, tail, axis=0), np.percentile(values, 100 - tail, axis=0)


def bootstrap(model, result, options: FitOptions, in_process: bool = False) -> Bootstrap:
    """``options.bootstrap`` refits of ``result`` (a full-batch fit of ``model`` that kept
    its dataset) on resamples of its training sequences; see the module's words.
    ``in_process``: one refit after another in this process (no interpreter start-up:
    for many small refits, as the calibration benchmark runs)."""
    started = time.perf_counter()
    n = options.bootstrap
    if result.dataset is None:
        raise BpmError("the bootstrap resamples the data in memory: a full-batch fit")
    job = refit_options(result, options)
    if in_process:
        outcomes = [
            _refit_here(model, resample(result.dataset, (options.seed, k)), job) for k in range(n)
        ]
    else:
        outcomes = _refit_elsewhere(model, result, options, job)
    found = Bootstrap([], n, seed=options.seed)
    cls = type(result.module)
    for k, fitted in enumerate(outcomes):
        if isinstance(fitted, str):
            found.failed.append(f"refit {k}: {fitted.strip().splitlines()[-1]}")
            continue
        refit = cls()
        refit.load_state_dict(torch_state(fitted["module_state"]))
        found.replicates.append(
            {k2: v.detach().double().numpy() for k2, v in refit.get_params().items()}
        )
        found.converged.append(bool(fitted.get("convergence", {}).get("converged")))
    found.seconds = time.perf_counter() - started
    found.notes = bootstrap_notes(found)
    return found


def refit_options(result, options: FitOptions) -> FitOptions:
    """A refit's options: the fit's own, the model's learned parameters started at the
    fitted values (natural units), one full-batch fit, one thread, quiet.

    When the fit runs to the training optimum (``stop="training"``) the estimate is that
    optimum, and a refit goes straight to the polish (one Adam step; unless there is no
    polish, ``polish=0``): Adam's job, finding
    the basin from a cold start, is done by the warm start, and a whole one-cycle
    schedule from it can throw a refit into another basin (on the calibration
    benchmark's rounds some refits of G_I = -3 kT fits landed at -9 to -12 kT)."""
    module = result.module
    warm = {
        name: value.detach().cpu().double().numpy()
        for name, value in module.get_params().items()
        if name in contract.learned_names(module)
    }
    straight = {"steps": 1} if options.stop == "training" and options.polish > 0 else {}
    return options.replace(
        init=warm, bootstrap=0, starts=1, mode="full", processes=1, threads=1, quiet=True,
        **straight,
    )  # fmt: skip


def _refit_here(model, data, job: FitOptions):
    from .paths import fit_in_process

    try:
        return record(fit_in_process(model, data, job, path="full"))
    except BpmError as error:
        return str(error)


def _refit_elsewhere(model, result, options: FitOptions, job: FitOptions) -> list:
    """The refits in fresh interpreters, ``options.processes`` (or one per CPU) at a time:
    each a :func:`~bpm.runtime.multistart.record`, or the message of its error."""
    n = options.bootstrap
    given = "processes" in options.given and options.mode == "full"
    workers = max(1, min(n, options.processes if given else (os.cpu_count() or 1)))
    if not options.quiet:
        print(f"bootstrap: {n} refits, {workers} at a time", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bpm-bootstrap-") as tmp:
        folder = Path(tmp)
        sendable = sendable_model(model, result.source, folder)
        files = []
        for k in range(n):
            path = folder / f"data{k}.pkl"
            with open(path, "wb") as handle:
                pickle.dump(resample(result.dataset, (options.seed, k)), handle)
            files.append(path)
        with ThreadPoolExecutor(workers) as pool:
            futures = [
                pool.submit(run_start, sendable, files[k], job, folder / f"refit{k}")
                for k in range(n)
            ]
            outcomes = []
            for future in futures:
                try:
                    outcomes.append(future.result())
                except BpmError as error:
                    outcomes.append(str(error))
    return outcomes


def resample(dataset, seed) -> object:
    """``dataset`` with its training rows drawn with replacement (as many as there are;
    each row keeps its reads), validation and test rows unchanged."""
    rng = np.random.default_rng(seed)
    training = np.flatnonzero(dataset.split == "training")
    others = np.flatnonzero(dataset.split != "training")
    chosen = np.sort(rng.choice(training, size=len(training), replace=True))
    rows = np.concatenate([chosen, others])
    summary = {**dataset.summary, "bootstrap_resample": {"seed": list(np.atleast_1d(seed))}}
    return replace(
        dataset,
        sequences=dataset.sequences[rows],
        codes=dataset.codes[rows],
        counts=dataset.counts[rows],
        split=dataset.split[rows],
        summary=summary,
    )


def sendable_model(model, source: str, folder: Path):
    """What a worker interpreter rebuilds the model from: the generated source written
    into ``folder`` (``("generated", path)``), else the .bpm path or text as given."""
    if source:
        path = folder / "model.py"
        path.write_text(source)
        return ("generated", str(path))
    if isinstance(model, (str, Path)):
        return str(model)
    raise BpmError("the bootstrap needs the model's source to refit it in other processes")


def bootstrap_notes(found: Bootstrap) -> list[str]:
    """Words for the fit's notes: how many refits, how many failed or did not converge."""
    done = len(found.replicates)
    notes = [
        f"bootstrap: {done} of {found.requested} refits on resampled training sequences "
        f"({found.seconds:.1f} s); standard errors and {LEVEL:.0%} percentile intervals "
        "in summary.json 'bootstrap' and params/*_bootstrap_*.csv"
    ]
    if found.failed:
        notes.append(f"bootstrap: {len(found.failed)} refit(s) failed: {found.failed[0]}")
    if done and not all(found.converged):
        notes.append(
            f"bootstrap: {done - sum(found.converged)} of {done} refits stopped short of their "
            "training optimum, as the fit itself may: the intervals are those of the "
            "early-stopped estimator"
        )
    if 0 < done < 20:
        notes.append(
            f"bootstrap: {done} refits give standard errors to about "
            f"{100 / np.sqrt(2 * max(done - 1, 1)):.0f}% and rough percentile intervals; "
            "use 50 or more for intervals"
        )
    return notes
