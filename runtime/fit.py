"""The front door: ``fit(model, data, options)`` chooses how to fit and runs the core.

One :class:`~bpm.runtime.options.FitOptions` record says everything; ``fit()`` takes it
or the same names as keyword arguments. Full batch (the data in memory), minibatches
streamed from a memory-mapped store (files over ``BPM_STREAM_THRESHOLD_BYTES``, or
``mode="stream"``) and several processes (``mode="distributed"``) share the starting
values (:mod:`~bpm.runtime.start`), the training core (:mod:`~bpm.runtime.train`) and
the result (:class:`~bpm.runtime.result.FitResult`). The same seed gives the same fit,
bit for bit, on the same machine.
"""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

import torch

from bpm.compiler import __version__

from .contract import resolve_model
from .options import FitOptions
from .paths import fit_in_process, split_tensors
from .polish import polish
from .progress import timed
from .result import FitResult

__all__ = [
    "STREAM_THRESHOLD_BYTES",
    "FitResult",
    "execution_path",
    "fit",
    "fit_in_process",
    "polish",
    "provenance",
    "resolve_model",
    "split_tensors",
    "wants_stream",
]

#: Files at least this large (uncompressed, estimated) are fitted by streaming minibatches
#: when the mode is ``auto``: 100 MB is about a million rows of 75 bp.
STREAM_THRESHOLD_BYTES = int(os.environ.get("BPM_STREAM_THRESHOLD_BYTES", 100 << 20))
#: How much larger than on disk a compressed file is, roughly.
EXPANSION = {".gz": 10, ".bz2": 10, ".xz": 10, ".zip": 10, ".parquet": 5, ".pq": 5}


def fit(model, data, options: FitOptions | dict | None = None, **kwargs) -> FitResult:
    """Fit ``model`` (a .bpm path or text, or a generated module class) to ``data``.

    ``data`` is a path, a DataFrame, a :class:`~bpm.runtime.data.Dataset` or an encoded
    :class:`~bpm.runtime.store.Store`; ``options`` a :class:`FitOptions` (or a dict),
    updated by keyword arguments of the same names (see :class:`FitOptions` for every
    option and its default).
    """
    options = FitOptions.build(options, **kwargs)
    path = execution_path(data, options)
    if options.starts > 1:
        from .multistart import fit_many

        result = fit_many(model, data, options)
    elif path == "distributed":
        from .distributed import spawn_fit

        result = spawn_fit(model, data, options)
    else:
        result = fit_in_process(model, data, options, path=path)
    if options.bootstrap > 0 and result.dataset is not None:
        from .bootstrap import bootstrap

        with timed(result.phase_seconds, "bootstrap"):
            result.bootstrap = bootstrap(model, result, options)
        result.notes = [*result.notes, *result.bootstrap.notes]
    if options.identifiability:
        from .identifiability import attach

        with timed(result.phase_seconds, "identifiability"):
            attach(result, options)
    result.provenance = provenance(data, options, path)
    return result


def provenance(data, options: FitOptions, path: str) -> dict:
    """What summary.json needs to make the fit again: every option, those the caller set,
    the execution path, the versions, and the sha256 of the data file (None for data
    given in memory)."""
    return {
        "bpm_version": __version__,
        "torch_version": str(torch.__version__),  # a TorchVersion, which model.pt refuses
        "python_version": platform.python_version(),
        "data_sha256": file_sha256(data),
        "execution_path": path,
        "options": options.record(),
        "options_given": sorted(options.given),
    }


def file_sha256(data) -> str | None:
    """The sha256 of the bytes of ``data`` when it names a file, else None.

    >>> file_sha256(Path(os.devnull)) is None, file_sha256("no/such/file") is None
    (True, True)
    """
    if not isinstance(data, (str, Path)) or not Path(data).is_file():
        return None
    digest = hashlib.sha256()
    with open(data, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wants_stream(data) -> bool:
    """True if ``data`` is a file path of at least ``STREAM_THRESHOLD_BYTES`` (uncompressed,
    estimated); ``BPM_STREAM=0`` or ``1`` in the environment forces the choice."""
    if not isinstance(data, (str, Path)):
        return False
    path = Path(data)
    if not path.is_file():
        return False
    forced = os.environ.get("BPM_STREAM")
    if forced in ("0", "1"):
        return forced == "1"
    factor = EXPANSION.get(path.suffix.lower(), 1)
    return path.stat().st_size * factor >= STREAM_THRESHOLD_BYTES


def execution_path(data, options: FitOptions) -> str:
    """``full``, ``stream`` or ``distributed`` for these data and options."""
    from .store import Store

    if options.mode != "auto":
        return options.mode
    if isinstance(data, Store) or wants_stream(data):
        return "stream"
    return "full"
