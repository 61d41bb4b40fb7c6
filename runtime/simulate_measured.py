"""Simulated continuous scores and count pairs: the measurements besides a sort.

:func:`bpm.runtime.simulate.simulate` draws the library and every variant's output ``t``
under the truth; with ``measurement="continuous"`` or ``"counts"`` it hands them here
instead of sorting cells. Both kinds measure each *unique* variant of the library once
(a deep mutational scan scores variants, not cells), in first-seen order, so the table
has one row per variant, ``multiplicity`` its number of cells in the library.

``continuous`` (a DMS score: a log2 enrichment relative to the wild type)::

    y = log2((t + floor) / (t_wt + floor)) + sd * N(0, 1)

with ``sd = noise`` for every variant, or, with ``dy``, ``sd = noise * exp(0.5 z)``
(``z ~ N(0, 1)``: variants measured with different depths) written as the ``dy``
column. Scores of variants worse than the wild type are negative. Columns ``x``, ``y``,
(``dy``), ``set``.

``counts`` (reads before and after a selection, two libraries sequenced separately)::

    w     = multiplicity * exp(0.5 z - 0.125)                  abundance in the input
    p     = background + (1 - background) * sigmoid(log(s (t + floor)) + noise * z')
    input_ct    ~ Multinomial(reads_in, w / sum(w))
    selected_ct ~ Multinomial(reads_sel, w p / sum(w p))

``p`` is the chance that a molecule of the variant survives selection, monotone in
``t`` (``s = 1 / median(t + floor)`` over the library: half survive at the median);
``noise`` spreads it beyond counting noise (the overdispersion the beta-binomial of
:class:`~bpm.runtime.measurement_counts.CountPairMeasurement` fits), ``background`` is
carry-over selected regardless of ``t``. Given a variant's reads in both columns, its
selected reads are binomial with a fraction monotone in ``p``, the fitted process.
``reads`` reads in all, half in each library. Every variant of the library is a row,
those with no input reads (and those with no reads at all, which the reader sets aside
and counts) included. Columns ``x``, ``input_ct``, ``selected_ct``, ``set``.
"""

from __future__ import annotations

import numpy as np

from bpm.compiler.errors import BpmDataError

KINDS = ("sortseq", "continuous", "counts")
#: log-sd of the per-variant standard errors (``dy``) and of the input abundances
DY_LOG_SD = 0.5
LIBRARY_LOG_SD = 0.5
#: default reads of a count pair per library variant (both libraries together)
READS_PER_VARIANT = 20


def check_measured(kind: str, n: int, reads, dy: bool, background: float, measurement_from):
    """The settings of ``kind`` checked; returns the reads to draw (None for a sort:
    the sort's default)."""
    if kind not in KINDS:
        raise BpmDataError(f"measurement must be one of {list(KINDS)}, not {kind!r}")
    if kind == "sortseq":
        if dy:
            raise BpmDataError("dy (standard errors) belongs to a continuous measurement")
        return reads
    if measurement_from is not None:
        raise BpmDataError(
            f"measurement_from draws sort bins from a fit's process; it does not go with a "
            f"{kind} measurement"
        )
    if dy and kind != "continuous":
        raise BpmDataError("dy (standard errors) belongs to a continuous measurement")
    if kind == "continuous" and background > 0:
        raise BpmDataError("background is carry-over in a sort or a selection; a continuous "
                           "score has none (leave it at 0)")  # fmt: skip
    if kind == "counts" and reads is None:
        return READS_PER_VARIANT * n
    return reads


def unique_variants(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first row of each distinct sequence in first-seen order, and its count."""
    packed = np.ascontiguousarray(codes).view(f"V{codes.shape[1]}").ravel()
    _, first, counts = np.unique(packed, return_index=True, return_counts=True)
    order = np.argsort(first, kind="stable")
    return first[order], counts[order]


def draw(kind: str, codes, t, t_wt: float, rngs: dict, *, noise, floor, reads, dy, background):
    """The measurement of each unique variant: its rows of ``codes``, the table's
    columns and the process's numbers for the truth (``simulation.measurement``).

    ``rngs``: independent generators ``noise`` (scores, selection noise), ``library``
    (abundances, standard errors) and ``reads``.
    """
    rows, multiplicity = unique_variants(codes)
    u = t[rows] + floor
    if kind == "continuous":
        sd = np.full(len(rows), float(noise))
        if dy:
            sd = noise * np.exp(DY_LOG_SD * rngs["library"].standard_normal(len(rows)))
        y = np.log2(u / (t_wt + floor)) + sd * rngs["noise"].standard_normal(len(rows))
        columns = {"y": y, "dy": sd} if dy else {"y": y}
        process = {
            "kind": "continuous",
            "formula": "y = log2((t + floor) / (t_wt + floor)) + sd * N(0, 1)",
            "sd": "noise * exp(0.5 z), written as dy" if dy else "noise",
            "noise_sd": float(noise),
            "floor": float(floor),
            "t_wild_type": float(t_wt),
            "dy_column": bool(dy),
            "dy_log_sd": DY_LOG_SD if dy else None,
            "y_mean": float(y.mean()),
            "y_sd": float(y.std()),
        }
        return rows, columns, process
    s = 1.0 / float(np.median(t + floor))
    z = rngs["noise"].standard_normal(len(rows))
    p = 1.0 / (1.0 + np.exp(-(np.log(s * u) + noise * z)))
    p = background + (1.0 - background) * p
    w = multiplicity * np.exp(
        LIBRARY_LOG_SD * rngs["library"].standard_normal(len(rows)) - LIBRARY_LOG_SD**2 / 2
    )
    reads_in = reads // 2
    reads_sel = reads - reads_in
    input_ct = rngs["reads"].multinomial(reads_in, w / w.sum())
    selected_ct = rngs["reads"].multinomial(reads_sel, w * p / (w * p).sum())
    columns = {"input_ct": input_ct, "selected_ct": selected_ct}
    both = input_ct + selected_ct
    process = {
        "kind": "counts",
        "pair": "separate",
        "formula": "p = background + (1 - background) * sigmoid(log(s (t + floor)) + "
        "noise * z); input_ct ~ Multinomial(reads_in, w / sum w); selected_ct ~ "
        "Multinomial(reads_sel, w p / sum w p); w = multiplicity * lognormal",
        "s": s,
        "noise_sd": float(noise),
        "floor": float(floor),
        "background": float(background),
        "library_log_sd": LIBRARY_LOG_SD,
        "reads_input": int(reads_in),
        "reads_selected": int(reads_sel),
        "selected_probability_range": [float(p.min()), float(p.max())],
        "zero_input_rows": int((input_ct == 0).sum()),
        "zero_read_rows": int((both == 0).sum()),
    }
    return rows, columns, process
