"""The ground truth of a simulation and the parameter files it reads and writes.

:class:`Truth` holds the parameters a simulated data set was made with (natural units,
zero-mean gauge) and saves them next to the data (``<stem>.truth.json`` and
``<stem>.truth/<name>_kT.csv``). :func:`random_params` draws a truth for a module's
learned parameters by their declared kind; :func:`read_params` reads one back from a
mapping, a JSON file, a saved truth or a fit directory.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bpm.compiler.errors import BpmDataError
from bpm.runtime.contract import as_numbers, complement, layout, site_energies, to_natural
from bpm.runtime.positions import numbered, numbering_summary

TABLE_SUFFIXES = (".gz", ".bz2", ".xz", ".zip", ".csv", ".tsv", ".txt", ".parquet", ".pq")


@dataclass
class Truth:
    """Ground-truth parameters of a simulation, in natural units.

    ``params`` maps each name of ``get_params()`` to a float (scalars, kT for energies)
    or an array (site energies, ``[width, n_letters]`` in kT). Additive matrices are in
    the zero-mean gauge: every position's entries sum to zero and ``<name>.offset``
    absorbs the shifts, so the energies equal those of the parameters that made the
    data. ``meta`` records how the library was made (wild type, rates, bin edges).
    """

    model: str
    params: dict[str, float | np.ndarray]
    kT_kcal_per_mol: float
    alphabet: str | None
    meta: dict = field(default_factory=dict)
    #: ``contract.site_energies(module)`` (start, revcomp of each site) and the letters'
    #: complement codes: with them the matrix CSVs use a fit's convention (below)
    sites: dict = field(default_factory=dict)
    complement: tuple[int, ...] | None = None
    #: how the model file numbers its positions (``contract.numbering``; None: it does not):
    #: the site CSVs then end with ``numbered_position``, as a fit's params/ do
    numbering: object | None = None

    def matrices(self) -> dict[str, np.ndarray]:
        """The array-valued parameters (site energies)."""
        return {k: v for k, v in self.params.items() if isinstance(v, np.ndarray)}

    def scalars(self) -> dict[str, float]:
        """The scalar parameters and offsets."""
        return {k: v for k, v in self.params.items() if not isinstance(v, np.ndarray)}

    def save(self, data_path: str | Path) -> tuple[Path, Path]:
        """Write ``<stem>.truth.json`` (scalars, metadata) and ``<stem>.truth/<name>_kT.csv``.

        ``<stem>`` is ``data_path`` without its table suffixes (``data.csv.gz`` gives
        ``data.truth.json``). Returns the JSON path and the matrix folder.
        """
        base = table_stem(Path(data_path))
        json_path = base.with_name(base.name + ".truth.json")
        folder = base.with_name(base.name + ".truth")
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for name, value in sorted(self.matrices().items()):
            path = folder / f"{name}_kT.csv"
            if name in self.sites:  # an additive matrix: labelled as bpm fit's params/
                frame = site_frame(value, self.alphabet, self.sites[name], self.complement)
                numbered(frame, self.numbering).to_csv(path, index=False)
            else:
                matrix_frame(value, self.alphabet).to_csv(path, index=False)
            files[name] = str(path.relative_to(json_path.parent))
        doc = {
            "model": self.model,
            "units": "kT (energies); kcal/mol = kT * kT_kcal_per_mol",
            "gauge": "zero mean at each position of every matrix; the offset absorbs the shifts",
            "kT_kcal_per_mol": self.kT_kcal_per_mol,
            "params": {k: float(v) for k, v in sorted(self.scalars().items())},
            "matrices": files,
            "positions": "site matrices as bpm fit's params/: one row per position in the "
            "full sequence, read on the top strand; pair tables: flat, the module's order",
            "simulation": self.meta,
        }
        doc.update(numbering_summary(self.numbering))
        json_path.write_text(json.dumps(doc, indent=2) + "\n")
        return json_path, folder


def site_frame(matrix, alphabet: str | None, site: Mapping, complement) -> pd.DataFrame:
    """A site matrix as a fit writes it: ``position`` (in the full sequence) then one
    column per letter, read on the top strand (a revcomp site's rows reversed and its
    letters complemented). :func:`read_params` turns it back into the module's order."""
    matrix = np.asarray(matrix, dtype=float)
    if site.get("revcomp") and complement is not None:
        matrix = matrix[::-1][:, list(complement)]
    frame = matrix_frame(matrix, alphabet).drop(columns="pos")
    frame.insert(0, "position", int(site["start"]) + np.arange(len(frame)))
    return frame


def table_stem(path: Path) -> Path:
    """``path`` without its table and compression suffixes (``data.csv.gz`` -> ``data``)."""
    name = path.name
    for suffix in TABLE_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return path.with_name(name)


def matrix_frame(matrix: np.ndarray, alphabet: str | None) -> pd.DataFrame:
    """A ``[width, letters]`` matrix as a table: ``pos`` then one column per letter."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2:
        # neighbor / pairwise tables: one row per flattened index
        flat = matrix.reshape(matrix.shape[0], -1)
        frame = pd.DataFrame(flat, columns=[f"v{k}" for k in range(flat.shape[1])])
    else:
        letters = list(alphabet) if alphabet else [f"v{k}" for k in range(matrix.shape[1])]
        frame = pd.DataFrame(matrix, columns=letters)
    frame.insert(0, "pos", np.arange(len(frame)))
    return frame


# ---------------------------------------------------------------- parameters


def random_params(
    module: torch.nn.Module,
    rng: np.random.Generator,
    *,
    matrix_sd: float = 1.0,
    energy_sd: float = 2.0,
    log_sd: float = 1.0,
) -> dict[str, float | np.ndarray]:
    """Random learned parameters: matrix entries N(0, matrix_sd) kT, scalar energies
    N(0, energy_sd) kT, bounded parameters log-normal (sd ``log_sd``) beyond their bound.

    Offsets are drawn here as 0 and set from the library later (see ``simulate``).
    Neighbour and pairwise tables get half the matrix scale. Other parameters are
    N(0, 1). The kind of each parameter is the one the module declares.
    """
    out: dict[str, float | np.ndarray] = {}
    for key, slot in layout(module).items():
        if not slot.learned:
            continue
        if slot.kind == "offset":
            out[key] = 0.0
        elif slot.kind == "matrix":
            out[key] = rng.normal(0.0, matrix_sd, size=slot.shape)
        elif slot.kind in ("neighbor", "pairwise"):
            out[key] = rng.normal(0.0, matrix_sd / 2, size=slot.shape)
        elif slot.transform in ("lower", "upper"):
            out[key] = float(to_natural(rng.normal(0.0, log_sd), slot.transform, slot.bound))
        elif slot.kind == "energy":
            out[key] = float(rng.normal(0.0, energy_sd))
        else:
            out[key] = float(rng.normal(0.0, 1.0))
    return out


def read_params(source: str | Path | Mapping, module: torch.nn.Module | None = None) -> dict:
    """Parameters from a dict, a JSON file, a fit directory or a simulation's truth.

    - a mapping ``{name: number or nested list}``;
    - a ``.json`` file with such a mapping, or with a ``params`` (or ``parameters``)
      mapping, plus matrices from ``<stem>/<name>_kT.csv`` next to it (the layout of
      ``<data>.truth.json``) or from a ``matrices`` mapping of relative paths;
    - a directory with ``summary.json`` and ``params/<name>_kT.csv`` (``bpm fit -o``).

    Matrix CSVs have one row per position and one column per letter of the alphabet
    (other columns such as ``pos`` are ignored). With ``module``, names it does not
    have are skipped.
    """
    if isinstance(source, Mapping):
        return {k: as_numbers(v) for k, v in source.items()}
    path = Path(source)
    if path.is_dir():
        summary = path / "summary.json"
        doc = json.loads(summary.read_text()) if summary.exists() else {}
        values = _scalars_from_doc(doc, module)
        folder = path / "params"
        if module is not None and folder.is_dir() and doc:
            # a fit directory: params/ reads on the top strand, as labelled (tables.py)
            from .tables import read_tables

            values.update(read_tables(folder, module))
        else:
            values.update(_matrices_from_folder(folder if folder.is_dir() else path, module))
        if not values:
            raise BpmDataError(f"no parameters found in {path} (summary.json, params/*_kT.csv)")
        return values
    if not path.exists():
        raise BpmDataError(f"parameter file not found: {path}")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BpmDataError(f"{path} is not JSON: {exc}") from exc
    values = _scalars_from_doc(doc, module)
    for name, rel in (doc.get("matrices") or {}).items():
        values[name] = _read_matrix(path.parent / rel, module, name)
    sibling = path.with_name(path.name[: -len(".json")]) if path.name.endswith(".json") else None
    if sibling is not None and sibling.is_dir():
        for name, matrix in _matrices_from_folder(sibling, module).items():
            values.setdefault(name, matrix)
    return values


def _known(module: torch.nn.Module | None) -> set[str] | None:
    """The parameter names of ``module`` (None: accept every name)."""
    return set(layout(module)) if module is not None else None


def _scalars_from_doc(doc: dict, module: torch.nn.Module | None) -> dict:
    """Parameter values in a JSON document: its ``params``/``parameters`` mapping or the
    top-level keys that name parameters of the module."""
    for key in ("params", "parameters"):
        if isinstance(doc.get(key), Mapping):
            doc = doc[key]
            break
    known = _known(module)
    out = {}
    for key, value in doc.items():
        if known is not None and key not in known:
            continue
        if isinstance(value, Mapping):
            value = value.get("value", value.get("kT"))
        if isinstance(value, (int, float, list)):
            out[key] = as_numbers(value)
    return out


def _matrices_from_folder(folder: Path, module: torch.nn.Module | None) -> dict:
    known = _known(module)
    out = {}
    for path in sorted(folder.glob("*_kT.csv")):
        name = path.name[: -len("_kT.csv")]
        if known is not None and name not in known:
            continue
        out[name] = _read_matrix(path, module, name)
    return out


def _read_matrix(path: Path, module: torch.nn.Module | None, name: str = "") -> np.ndarray:
    frame = pd.read_csv(path)
    alphabet = getattr(module, "alphabet", None) or "ACGT"
    letters = [c for c in frame.columns if str(c) in alphabet and len(str(c)) == 1]
    if sorted(letters) == sorted(alphabet):
        matrix = frame[list(alphabet)].to_numpy(dtype=float)
        site = site_energies(module).get(name, {}) if module is not None else {}
        if "position" in frame.columns and site.get("revcomp"):  # top strand: back to storage
            matrix = matrix[::-1][:, complement(module)]
        return np.ascontiguousarray(matrix)
    values = [c for c in frame.columns if str(c).startswith("v")]
    if values:
        return frame[values].to_numpy(dtype=float)
    raise BpmDataError(f"{path}: expected one column per letter of '{alphabet}'")
