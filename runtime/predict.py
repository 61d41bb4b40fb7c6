"""Predictions of a fit for new sequences, and reading the sequences to predict.

``predictions(result, sequences)`` is what :meth:`FitResult.predict` and ``bpm predict``
return: one row per sequence with the measured output, every state's probability and
the most likely bin.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from bpm.compiler.errors import BpmError

from . import contract

#: Columns of a table that may hold the sequences, in the order they are looked for.
SEQUENCE_COLUMNS = ("x", "sequence", "seq")
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".gz")


def predictions(result, sequences) -> pd.DataFrame:
    """One row per sequence: the output (``t``), ``P(<state>)`` for every state, the most
    likely bin. ``result`` is a :class:`~bpm.runtime.result.FitResult`."""
    seqs = [sequences] if isinstance(sequences, str) else list(sequences)
    if not seqs:
        raise BpmError("no sequences to predict")
    module = result.module
    x = contract.as_codes(module, seqs)
    with torch.no_grad():
        t = contract.select_output(module(x), result.output)
        P = module.P(x)
        bins = result.measurement(t)
    frame = pd.DataFrame({"sequence": seqs, result.output: t.double().cpu().numpy()})
    for k, state in enumerate(module.state_names):
        frame[f"P({state})"] = P[:, k].double().cpu().numpy()
    frame["most_likely_bin"] = bins.argmax(1).cpu().numpy()
    return frame


def read_sequences(arg: str) -> list[str]:
    """Sequences from a file (one a line, or a table with an ``x``/``sequence`` column) or
    the argument itself (comma- or whitespace-separated)."""
    path = Path(arg)
    if path.exists():
        if path.suffix.lower() in TABLE_SUFFIXES:
            from .data import read_table

            table = read_table(path)
            for column in SEQUENCE_COLUMNS:
                if column in table.columns:
                    return table[column].astype(str).tolist()
            raise BpmError(f"{path} has no column named x, sequence or seq")
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [s for s in arg.replace(",", " ").split() if s]
