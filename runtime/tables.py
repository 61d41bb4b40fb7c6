"""A fitted module's parameters as tables that read against the top strand, in one gauge.

Every site energy ``G`` is rewritten in the coordinates of the full sequence as the
reader has it (the top strand), whatever strand the module reads it on::

    G(x) = offset + sum_p M[p, x[p]] + sum_{i<j} T[i, j, x[i], x[j]]

``p``, ``i``, ``j`` are positions in the full sequence and the letters those found
there, so a ``revcomp`` site's table is reversed and complemented here (the module
stores it in bottom-strand order). ``T`` holds a ``neighbor`` site's adjacent pairs or a
``pairwise`` site's pairs, none for ``matrix``. The gauge (what the shifts that change
no energy are set to) is one of :data:`GAUGES`:

- ``zero-mean``: each pair table averages zero over either letter, each row of ``M``
  averages zero, the offset absorbs the shifts (for a plain matrix: what
  :func:`bpm.runtime.contract.zero_mean_gauge` gives);
- ``wild-type``: every entry that involves a wild-type letter is zero, so ``M[p, a]``
  is the single mutant's energy change and the offset is the wild type's energy.

The report (summary.json, params/*.csv) and the figures (logos, heatmaps, error bars)
all read these; energies and kT come from :mod:`bpm.runtime.contract`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from bpm.compiler.errors import BpmError

from . import contract

#: The gauges a report can be written in, by the names summary.json gives them.
GAUGES = ("zero-mean", "wild-type")


@dataclass(frozen=True)
class SiteTerms:
    """One site energy on the top strand (kT): ``offset``, ``matrix`` ``[width, A]`` with
    row ``r`` at position ``start + r``, and ``pairs`` ``[width, width, A, A]`` (entries
    ``i < j`` only, zero elsewhere) or None for a plain matrix."""

    name: str
    kind: str
    start: int
    revcomp: bool
    letters: str
    offset: float
    matrix: np.ndarray
    pairs: np.ndarray | None

    @property
    def positions(self) -> range:
        return range(self.start, self.start + self.matrix.shape[0])

    def energy(self, codes: np.ndarray) -> np.ndarray:
        """This site's energy (kT) of full-length sequences given as integer codes ``[N, L]``."""
        window = np.asarray(codes, dtype=np.int64)[:, self.start : self.start + len(self.matrix)]
        rows = np.arange(window.shape[1])
        total = self.offset + self.matrix[rows, window].sum(1)
        if self.pairs is not None:
            i, j = np.triu_indices(window.shape[1], 1)
            total = total + self.pairs[i, j, window[:, i], window[:, j]].sum(1)
        return total


def gauge_name(gauge: str) -> str:
    """``gauge`` as summary.json names it (``wild_type`` reads as ``wild-type``)."""
    name = str(gauge).replace("_", "-")
    if name not in GAUGES:
        raise BpmError(f"unknown gauge '{gauge}'; choose one of {', '.join(GAUGES)}")
    return name


def top_strand_terms(module: nn.Module, params=None) -> dict[str, SiteTerms]:
    """Every site energy of ``module`` on the top strand, as stored (no gauge fixed)."""
    params = module.get_params() if params is None else params
    return {name: site_terms(module, name, params) for name in contract.site_energies(module)}


def site_terms(module: nn.Module, name: str, params) -> SiteTerms:
    """Site energy ``name`` on the top strand from ``params`` (``get_params()`` names,
    natural units; any linear stand-in works, e.g. one unit coordinate for the
    standard errors)."""
    info = contract.site_energies(module)[name]
    matrix = contract.as_numbers(params[name])
    width, size = matrix.shape
    offset = float(contract.as_numbers(params.get(f"{name}.offset", 0.0)))
    pairs = None
    if f"{name}.neighbor" in params:
        pairs = np.zeros((width, width, size, size))
        k = np.arange(width - 1)
        pairs[k, k + 1] = contract.as_numbers(params[f"{name}.neighbor"])
    elif f"{name}.pairwise" in params:
        upper = np.triu(np.ones((width, width)), 1)[:, :, None, None]
        pairs = contract.as_numbers(params[f"{name}.pairwise"]) * upper
    revcomp = bool(info.get("revcomp"))
    if revcomp:
        # stored row k, letter c is top-strand row width-1-k, the letter whose complement
        # is c; a stored pair (k1 < k2) is the top-strand pair (w-1-k2, w-1-k1)
        comp = contract.complement(module)
        matrix = matrix[::-1][:, comp]
        if pairs is not None:
            pairs = pairs[::-1, ::-1][:, :, comp][:, :, :, comp].transpose(1, 0, 3, 2)
    return SiteTerms(
        name, info["kind"], int(info["start"]), revcomp, str(module.alphabet), offset,
        np.ascontiguousarray(matrix, dtype=float),
        None if pairs is None else np.ascontiguousarray(pairs, dtype=float),
    )  # fmt: skip


def fix_gauge(terms: SiteTerms, gauge: str, wild_type: np.ndarray | None = None) -> SiteTerms:
    """``terms`` in ``gauge``; every sequence's energy unchanged.

    ``wild_type``: the full sequence's wild-type letter codes, needed for ``wild-type``.
    """
    gauge = gauge_name(gauge)
    matrix, pairs, offset = terms.matrix.copy(), terms.pairs, terms.offset
    width = len(matrix)
    if gauge == "wild-type":
        if wild_type is None:
            raise BpmError("the wild-type gauge needs a wild-type sequence")
        wt = np.asarray(wild_type, dtype=np.int64)[terms.start : terms.start + width]
        if pairs is not None:
            # T[a,b] = D[a,b] + (T[a,wt_j] - T[wt_i,wt_j]) + T[wt_i,b], D zero on wt letters
            i, j = np.arange(width)[:, None], np.arange(width)[None, :]
            by_a = pairs[i, j, :, wt[None, :]]  # [w, w, A]: T[i, j, a, wt_j]
            by_b = pairs[i, j, wt[:, None], :]  # T[i, j, wt_i, b]
            both = pairs[i, j, wt[:, None], wt[None, :]]  # [w, w]
            pairs = pairs - by_a[..., :, None] - by_b[..., None, :] + both[..., None, None]
            matrix += (by_a - both[..., None]).sum(1) + by_b.sum(0)
            pairs[i, j, wt[:, None], :] = 0.0  # exactly, not to rounding
            pairs[i, j, :, wt[None, :]] = 0.0
        shift = matrix[np.arange(width), wt]
    else:
        if pairs is not None:
            # T[a,b] = D[a,b] + (mean_b T - mean T) + mean_a T, D averaging zero both ways
            rows, cols = pairs.mean(3), pairs.mean(2)
            grand = pairs.mean((2, 3))
            pairs = pairs - rows[..., :, None] - cols[..., None, :] + grand[..., None, None]
            matrix += (rows - grand[..., None]).sum(1) + cols.sum(0)
        shift = matrix.mean(1)
    return replace(
        terms, offset=offset + float(shift.sum()), matrix=matrix - shift[:, None], pairs=pairs
    )


def gauged_terms(
    module: nn.Module, gauge: str = "zero-mean", wild_type: np.ndarray | None = None
) -> dict[str, SiteTerms]:
    """Every site energy of ``module`` on the top strand in ``gauge`` (see :func:`fix_gauge`)."""
    return {
        name: fix_gauge(terms, gauge, wild_type) for name, terms in top_strand_terms(module).items()
    }


def matrix_frame(terms: SiteTerms) -> pd.DataFrame:
    """``M`` as a table: index ``position`` (full sequence), one column per letter (kT)."""
    index = pd.Index(list(terms.positions), name="position")
    return pd.DataFrame(terms.matrix, index=index, columns=list(terms.letters))


def pairs_frame(terms: SiteTerms, values: np.ndarray | None = None) -> pd.DataFrame:
    """The pair terms in long format, one row per pair of positions and letters:
    ``position_i, position_j, letter_i, letter_j, energy`` (kT; ``i < j``, full-sequence
    positions). ``neighbor`` lists adjacent pairs only. ``values`` replaces the energies
    (e.g. standard errors shaped like ``terms.pairs``)."""
    width, size = terms.matrix.shape
    i, j = np.triu_indices(width, 1)
    if terms.kind == "neighbor":
        i, j = i[j == i + 1], j[j == i + 1]
    a, b = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    table = terms.pairs if values is None else values
    letters = np.array(list(terms.letters))
    return pd.DataFrame(
        {
            "position_i": np.repeat(i + terms.start, size * size),
            "position_j": np.repeat(j + terms.start, size * size),
            "letter_i": np.tile(letters[a.ravel()], len(i)),
            "letter_j": np.tile(letters[b.ravel()], len(i)),
            "energy": table[i, j].reshape(-1),
        }
    )


def storage_order(module: nn.Module, name: str, matrix, pairs=None) -> dict[str, np.ndarray]:
    """Top-strand tables of site ``name`` back in the module's own layout: ``{name: [w, A]}``
    plus ``name.neighbor`` or ``name.pairwise`` when ``pairs`` (``[w, w, A, A]``) is given;
    ``set_params`` takes the result. The inverse of :func:`site_terms` (reversing and
    complementing twice is the identity)."""
    info = contract.site_energies(module)[name]
    matrix = np.asarray(matrix, dtype=float)
    if info.get("revcomp"):
        comp = contract.complement(module)
        matrix = matrix[::-1][:, comp]
        if pairs is not None:
            pairs = np.asarray(pairs, float)[::-1, ::-1][:, :, comp][:, :, :, comp]
            pairs = pairs.transpose(1, 0, 3, 2)
    out = {name: np.ascontiguousarray(matrix)}
    if pairs is not None and info["kind"] == "neighbor":
        k = np.arange(len(matrix) - 1)
        out[f"{name}.neighbor"] = np.ascontiguousarray(pairs[k, k + 1])
    elif pairs is not None and info["kind"] == "pairwise":
        upper = np.triu(np.ones((len(matrix),) * 2), 1)[:, :, None, None]
        out[f"{name}.pairwise"] = np.ascontiguousarray(pairs * upper)
    return out


def read_tables(folder: str | Path, module: nn.Module) -> dict[str, np.ndarray]:
    """The site tables a report wrote into ``folder`` (``<G>_kT.csv``, ``<G>_pairs_kT.csv``),
    in the module's own layout (``get_params()`` names; offsets are in summary.json)."""
    folder = Path(folder)
    letters = str(module.alphabet)
    out = {}
    for name, info in contract.site_energies(module).items():
        path = folder / f"{name}_kT.csv"
        if not path.exists():
            continue
        frame = pd.read_csv(path, index_col="position")
        matrix = frame[list(letters)].to_numpy(dtype=float)
        pairs = None
        long_path = folder / f"{name}_pairs_kT.csv"
        if info["kind"] != "matrix" and long_path.exists():
            long = pd.read_csv(long_path)
            width, start = len(matrix), int(info["start"])
            pairs = np.zeros((width, width, len(letters), len(letters)))
            code = {c: k for k, c in enumerate(letters)}
            pairs[
                long["position_i"].to_numpy() - start,
                long["position_j"].to_numpy() - start,
                long["letter_i"].map(code).to_numpy(),
                long["letter_j"].map(code).to_numpy(),
            ] = long["energy"].to_numpy(dtype=float)
        out.update(storage_order(module, name, matrix, pairs))
    return out


def wild_type_codes(module: nn.Module, wild_type=None, codes=None) -> np.ndarray | None:
    """The wild type as letter codes ``[L]``: ``wild_type`` (a sequence) if given, else the
    most common letter at each position of ``codes`` (the library), else None."""
    if wild_type is not None:
        try:
            return module.encode([str(wild_type)])[0].cpu().numpy().astype(np.int64)
        except ValueError as error:
            raise BpmError(f"the wild-type sequence: {error}") from None
    if codes is None or len(codes) == 0:
        return None
    return contract.consensus(codes, 0, codes.shape[1], len(module.alphabet))


def gauge_fixed(
    module: nn.Module, gauge: str = "zero-mean", wild_type: np.ndarray | None = None
) -> dict[str, tuple[pd.DataFrame, float]]:
    """Each site's additive matrix on the top strand in ``gauge`` (kT), with its offset."""
    return {
        name: (matrix_frame(terms), terms.offset)
        for name, terms in gauged_terms(module, gauge, wild_type).items()
    }


def scalar_params(
    module: nn.Module, gauge: str = "zero-mean", wild_type: np.ndarray | None = None
) -> dict[str, float]:
    """Scalar parameters in natural units, energies also as ``<name>_kcal_per_mol``.

    Site offsets are given in ``gauge``, as in params/*.csv.
    """
    kT = contract.kT_kcal_per_mol(module)
    energies = contract.energy_names(module)
    gauged = gauged_terms(module, gauge, wild_type)
    slots = contract.layout(module)
    out: dict[str, float] = {}
    for name, value in sorted(module.get_params().items()):
        if value.ndim != 0:
            continue
        base = name.split(".")[0]
        slot = slots[name]
        if base in gauged and name == f"{base}.offset":
            number = gauged[base].offset
        elif not slot.learned and slot.init is not None and _holds(value, slot.init):
            number = float(slot.init)  # a fixed value as the file wrote it, not its float32 copy
        else:
            number = float(value)
        out[name] = number
        if base in energies:
            # 12 significant digits: kT -> kcal/mol -> kT round trips give back what was written
            out[f"{name}_kcal_per_mol"] = float(f"{number * kT:.12g}")
    return out


def _holds(value, written: float) -> bool:
    """True if a stored tensor still holds ``written`` (up to its own precision)."""
    return float(value.to(value.new_tensor(written).dtype)) == float(value.new_tensor(written))
