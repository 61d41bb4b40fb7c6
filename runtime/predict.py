"""Predictions of a fit for new sequences, and reading the sequences to predict.

``predictions(result, sequences)`` is what :meth:`FitResult.predict` and ``bpm predict``
return: one row per sequence with the measured output, every state's probability and
the most likely bin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bpm.compiler.errors import BpmError

from . import contract
from .letters import encode, letter_codes
from .measurement_kinds import predicted_columns

#: Columns of a table that may hold the sequences, in the order they are looked for.
SEQUENCE_COLUMNS = ("x", "sequence", "seq")
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".gz")


def predictions(result, sequences) -> pd.DataFrame:
    """One row per sequence: the output (``t``), ``P(<state>)`` for every state, and the
    predicted measurement: the most likely bin of a sort, ``y_hat`` (``E[y | t]``) of a
    continuous score, ``selected_fraction`` of a count pair. ``result`` is a
    :class:`~bpm.runtime.result.FitResult`."""
    seqs = sequences_of(sequences)
    if not seqs:
        raise BpmError("no sequences to predict")
    module = result.module
    x = contract.as_codes(module, checked_codes(module, seqs))
    measurement = result.measurement
    with torch.no_grad():
        t = contract.select_output(module(x), result.output)
        P = module.P(x)
    frame = pd.DataFrame({"sequence": seqs, result.output: t.double().cpu().numpy()})
    for k, state in enumerate(module.state_names):
        frame[f"P({state})"] = P[:, k].double().cpu().numpy()
    predicted = predicted_columns(measurement, t)
    for name, values in predicted.items():
        frame[name] = values
    if not predicted:  # a sort: the bin a read of the sequence most likely lands in
        with torch.no_grad():
            frame["most_likely_bin"] = measurement(t).argmax(1).cpu().numpy()
    return frame


def checked_codes(module, seqs: list[str]) -> np.ndarray:
    """``seqs`` as the module's letter codes (:func:`bpm.runtime.letters.encode`, the same
    letters and case rule as the data); a sequence that is not text, of the wrong length
    or with letters outside the alphabet is a :class:`BpmError` naming it."""
    alphabet, length = str(module.alphabet), int(module.sequence_length)
    accepted = letter_codes(alphabet)
    for i, s in enumerate(seqs):
        if not isinstance(s, str):
            raise BpmError(f"cannot encode sequences: sequence {i} is not text: {s!r:.60}")
        if len(s) != length:
            raise BpmError(
                f"cannot encode sequences: sequence {i} has length {len(s)}, expected {length}"
                f": {s!r:.80}"
            )
        bad = sorted(set(s).difference(accepted))
        if bad:
            raise BpmError(
                f"cannot encode sequences: sequence {i} has letters {bad[:5]} outside the "
                f"alphabet '{alphabet}'"
            )
    return encode(seqs, alphabet)


def sequences_of(sequences, name: str = "<DataFrame>") -> list[str]:
    """The sequences to predict as a list of strings: ``sequences`` a string, a list or
    other iterable of strings, a pandas Series, or a DataFrame with a column named in
    :data:`SEQUENCE_COLUMNS` (the first found; ``name`` names it in the error)."""
    if isinstance(sequences, str):
        return [sequences]
    if isinstance(sequences, pd.DataFrame):
        for column in SEQUENCE_COLUMNS:
            if column in sequences.columns:
                return _as_text(sequences[column])
        raise BpmError(
            f"{name} has no column named {', '.join(SEQUENCE_COLUMNS)}; "
            f"its columns are {[str(c) for c in sequences.columns][:10]}"
        )
    if isinstance(sequences, pd.Series):
        return _as_text(sequences)
    return list(sequences)


def _as_text(column: pd.Series) -> list[str]:
    """A column of sequences as strings; a missing value is an error naming its row."""
    missing = column.isna().to_numpy()
    if missing.any():
        row = int(missing.argmax())
        raise BpmError(f"sequence {row} is missing (0-based row {row} of the table)")
    return [str(s).strip() for s in column.tolist()]


def read_sequences(arg: str) -> list[str]:
    """Sequences from a file (one a line, or a table with an ``x``/``sequence`` column) or
    the argument itself (comma- or whitespace-separated)."""
    path = Path(arg)
    if path.exists():
        if path.suffix.lower() in TABLE_SUFFIXES:
            from .table_files import read_table

            return sequences_of(read_table(path, SEQUENCE_COLUMNS), str(path))
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [s for s in arg.replace(",", " ").split() if s]
