"""Fitting on data too large for memory: minibatches read from an encoded store.

The store (:mod:`bpm.runtime.store`: ``encode_file``, ``open_store``, ``Store``) is
encoded once from the count table, checked row by row with :mod:`bpm.runtime.data`'s
checks; the minibatch path of :func:`bpm.runtime.fit` trains on it with Adam over
shuffled blocks of rows (:class:`bpm.runtime.sources.Minibatches`), reading each batch
from the memory map, so memory grows with the encoded data (95 bytes a row for 75 bp
and 10 bins), not with the CSV, and time per sequence stays flat.

``fit_stream`` is that path by name: ``fit(model, data, mode="stream", ...)``, kept for
the callers written before the front door took every option.
"""

from __future__ import annotations

from .fit import STREAM_THRESHOLD_BYTES, wants_stream
from .options import FitOptions
from .sources import Comm
from .store import Store, encode_file, open_store

__all__ = [
    "STREAM_THRESHOLD_BYTES",
    "Comm",
    "Store",
    "encode_file",
    "fit_stream",
    "open_store",
    "wants_stream",
]


def fit_stream(model, data, options: FitOptions | dict | None = None, *, max_steps=None, **kwargs):
    """Fit ``model`` to ``data`` (a path, or a :class:`Store`) by minibatch Adam:
    :func:`bpm.runtime.fit` with ``mode="stream"`` (``max_steps`` is ``steps``)."""
    from .fit import fit

    if max_steps is not None:
        kwargs["steps"] = max_steps
    return fit(model, data, options, **{"mode": "stream", **kwargs})
