"""The site tables a report shows, in one gauge, with their standard errors.

:func:`report_tables` gathers what summary.json, params/*.csv and the figures all read:
the gauge, the wild type, each site on the top strand (:mod:`bpm.runtime.tables`) and
the standard errors of its entries.

:func:`bpm.runtime.uncertainty.analyze` gives standard errors of the stored matrices in
the zero-mean gauge of their additive part, and the covariance of every learned
coordinate. Every entry of :mod:`bpm.runtime.tables` (a reversed, complemented, gauge-
fixed table) is a linear function of a site's stored entries, so its variance is
``J C J^T`` with ``J`` that function's coefficients: exact in either gauge, and for
pair terms too. A plain matrix in the zero-mean gauge keeps analyze's own numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from bpm.compiler.errors import BpmError
from bpm.compiler.ir import Numbering

from . import contract
from .tables import (
    SiteTerms,
    fix_gauge,
    gauge_name,
    gauged_terms,
    site_terms,
    wild_type_codes,
)


@dataclass(frozen=True)
class ReportTables:
    """Every site table of one report: ``gauge`` (a name of :data:`~bpm.runtime.tables.GAUGES`),
    ``wild_type`` (letter codes ``[L]``, or None when unknown) and where it came from
    (``"given"`` or ``"library consensus"``), ``terms`` and ``errors`` by site name (errors
    only with an uncertainty analysis), the wild type's energy of each site (kT), and how a
    person numbers the positions (:func:`bpm.runtime.contract.numbering`, or None)."""

    gauge: str
    wild_type: np.ndarray | None
    wild_type_source: str | None
    terms: dict[str, SiteTerms]
    errors: dict[str, SiteErrors]
    wild_type_energies: dict[str, float]
    numbering: Numbering | None = None

    def gauge_words(self, name: str, kT: float) -> str:
        """The gauge and site ``name``'s offset in it, as figure titles say them."""
        offset = self.terms[name].offset * kT
        if self.gauge == "wild-type":
            return f"wild-type gauge (wild type = 0), wild-type energy {offset:+.2f} kcal/mol"
        return f"zero-mean gauge, offset {offset:+.2f} kcal/mol"


def report_tables(result, gauge: str = "zero-mean", wild_type: str | None = None) -> ReportTables:
    """The tables of ``result`` (a FitResult) in ``gauge``.

    ``wild_type``: a full-length sequence; by default the most common letter at each
    position of the fit's library (its sequences, unweighted), when the fit keeps its data.
    The ``wild-type`` gauge needs one of the two.
    """
    gauge = gauge_name(gauge)
    module = result.module
    codes = getattr(result.dataset, "codes", None)
    wt = wild_type_codes(module, wild_type, codes)
    if gauge == "wild-type" and wt is None:
        raise BpmError(
            "the wild-type gauge needs a wild-type sequence: this fit keeps no library "
            "to take the consensus of; give one (wild_type=...)"
        )
    terms = gauged_terms(module, gauge, wt)
    energies = {}
    if wt is not None:
        energies = {name: float(t.energy(wt[None, :])[0]) for name, t in terms.items()}
    source = None if wt is None else ("given" if wild_type is not None else "library consensus")
    errors = site_errors(module, result.uncertainty, gauge, wt)
    return ReportTables(gauge, wt, source, terms, errors, energies, contract.numbering(module))


@dataclass(frozen=True)
class SiteErrors:
    """Standard errors (kT) shaped like a :class:`~bpm.runtime.tables.SiteTerms`: ``nan``
    where the likelihood curves downward, ``inf`` where the data do not fix an entry."""

    offset: float
    matrix: np.ndarray
    pairs: np.ndarray | None


def site_errors(
    module: nn.Module, uncertainty, gauge: str = "zero-mean", wild_type=None
) -> dict[str, SiteErrors]:
    """The standard errors of every site table with a learned matrix, in ``gauge``."""
    if uncertainty is None:
        return {}
    gauge = gauge_name(gauge)
    errors = uncertainty.standard_errors
    params = module.get_params()
    out = {}
    for name, info in contract.site_energies(module).items():
        if not isinstance(errors.get(name), np.ndarray):
            continue
        parts = [p for p in (name, f"{name}.offset", f"{name}.neighbor", f"{name}.pairwise")
                 if p in params]  # fmt: skip
        if gauge == "zero-mean" and len(parts) <= 2:
            out[name] = _as_analyzed(module, name, info, errors)
        else:
            out[name] = _propagated(module, name, parts, params, uncertainty, gauge, wild_type)
    return out


def _as_analyzed(module, name: str, info: dict, errors: dict) -> SiteErrors:
    """analyze's own numbers for a plain matrix (same gauge), on the top strand."""
    matrix = np.asarray(errors[name], dtype=float)
    if info.get("revcomp"):
        matrix = matrix[::-1][:, contract.complement(module)]
    offset = errors.get(f"{name}.offset", 0.0)
    return SiteErrors(float(offset), np.ascontiguousarray(matrix), None)


def _propagated(module, name, parts, params, uncertainty, gauge, wild_type) -> SiteErrors:
    """Standard errors of the gauge-fixed top-strand entries through ``J C J^T``."""
    coordinates = [
        (k, part, index) for k, (part, index) in enumerate(uncertainty.coordinates) if part in parts
    ]
    zero = {p: np.zeros(tuple(params[p].shape)) for p in parts}
    columns = []
    for _, part, index in coordinates:
        unit = {p: v.copy() for p, v in zero.items()}
        unit[part][index] = 1.0
        terms = fix_gauge(site_terms(module, name, unit), gauge, wild_type)
        columns.append(_flat(terms.offset, terms.matrix, terms.pairs))
    template = site_terms(module, name, zero)
    if not columns:
        n = _flat(0.0, template.matrix, template.pairs).size
        return _unflat(np.zeros(n), template)
    J = np.stack(columns, axis=1)  # [entries, coordinates]
    rows = [k for k, _, _ in coordinates]
    C = np.asarray(uncertainty.covariance)[np.ix_(rows, rows)]
    se = np.sqrt(np.clip(np.einsum("ec,cd,ed->e", J, C, J), 0.0, None))
    # an entry built from an unstable coordinate is unstable too; for a plain matrix, one
    # built from a coordinate the data leave free is free (with pair terms the gauge of
    # the pairs is a flat direction analyze cannot tell apart, so only nan passes on)
    found = uncertainty.standard_errors
    flags = np.array([_coordinate_error(found, p, i) for _, p, i in coordinates])
    touches = np.abs(J) > 1e-12
    se = np.where((touches & np.isnan(flags)).any(1), np.nan, se)
    se = np.where(touches.any(1), se, 0.0)  # fixed by the gauge alone: exactly known
    if template.pairs is None:
        se = np.where((touches & np.isposinf(flags)).any(1) & ~np.isnan(se), np.inf, se)
    return _unflat(se, template)


def _coordinate_error(errors: dict, part: str, index: tuple) -> float:
    value = errors.get(part, 0.0)
    return float(np.asarray(value)[index]) if index else float(value)


def _flat(offset: float, matrix: np.ndarray, pairs: np.ndarray | None) -> np.ndarray:
    pieces = [np.array([offset]), matrix.ravel()]
    return np.concatenate(pieces + ([] if pairs is None else [pairs.ravel()]))


def _unflat(values: np.ndarray, template) -> SiteErrors:
    size = template.matrix.size
    matrix = values[1 : 1 + size].reshape(template.matrix.shape)
    pairs = None if template.pairs is None else values[1 + size :].reshape(template.pairs.shape)
    return SiteErrors(float(values[0]), matrix, pairs)
