"""A profile likelihood over one scalar parameter: one fit per value, the best released."""

from __future__ import annotations

import time
from collections.abc import Sequence

from bpm.compiler.errors import BpmError

from .data import SPLITS
from .fit import fit
from .options import FitOptions
from .paths import split_tensors
from .polish import polish
from .result import FitResult
from .sources import tensor_chunks
from .start import hold, pin_consensus
from .train import Joint, deterministic, evaluate


def profile(
    model,
    data,
    name: str,
    values: Sequence[float],
    *,
    release: bool = True,
    options: FitOptions | dict | None = None,
    **kwargs,
) -> FitResult:
    """Fit once per value with ``name`` held there, keep the most likely, release it.

    The fit with the lowest training NLL (the profile's maximum; validation reads only
    stop each fit) is kept, and with ``release`` polished once more by L-BFGS with
    ``name`` free. ``result.profile`` holds one ``{"parameter", "value", "train_nll",
    "val_nll", "test_nll"}`` row per value. ``options`` and keyword arguments are those
    of :func:`bpm.runtime.fit` (full batch).
    """
    if not values:
        raise BpmError(f"profile over '{name}' needs at least one value")
    options = FitOptions.build(options, **kwargs)
    rows, best, spent = [], None, 0.0
    for value in values:
        run = options.replace(
            init={**options.init, name: float(value)}, fix=(*options.fix, name), mode="full"
        )
        result = fit(model, data, run)
        row = {"parameter": name, "value": float(value)}
        spent += result.wall_seconds
        for split, key in (("training", "train"), ("validation", "val"), ("test", "test")):
            row[f"{key}_nll"] = result.metrics[split]["nll"]
        rows.append(row)
        if best is None or row["train_nll"] < best[0]:
            best = (row["train_nll"], result)
    result = best[1]
    result.wall_seconds = spent
    if release and options.polish > 0:
        started = time.perf_counter()
        dataset = result.dataset
        device = options.device
        tensors = {s: split_tensors(dataset, s, device) for s in SPLITS}
        joint = Joint(result.module, result.measurement, result.output)
        with deterministic(options.seed, options.threads):
            held = hold(result.module, options.fix)
            hooks = pin_consensus(result.module, dataset.subset("training").codes)
            stage = polish(
                joint,
                tensors["training"],
                tensors["validation"],
                options.polish,
                result.history,
                start=result.steps,
            )
            for hook in hooks:
                hook.remove()
            for tensor in held:
                tensor.requires_grad_(True)
            result.steps += stage.iterations
            result.stages.append({**stage.as_dict(), "stage": "lbfgs (released)"})
            result.metrics = {s: evaluate(joint, tensor_chunks(*tensors[s])) for s in SPLITS}
        result.wall_seconds += time.perf_counter() - started
    result.profile = rows
    return result
