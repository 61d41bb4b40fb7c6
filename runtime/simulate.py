"""Simulated sort-seq experiments with known parameters.

``simulate(model, n=...)`` draws a mutagenized library around a wild-type sequence,
computes every variant's output ``t`` with the compiled model under ground-truth
parameters, gives each cell a log-normal expression readout around ``t``, sorts the
cells into bins at the quantiles of the readouts, and sequences each bin by sampling
reads from its cells. The result is a count table in the layout ``bpm fit`` reads
(``x``, ``ct_0``..``ct_{B-1}``, ``set``) and the ground truth it came from.

Everything is vectorized (numpy for the library and the sort, torch in batches for
``t``), so a million sequences take seconds, and the same seed gives the same table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bpm.compiler.errors import BpmDataError, BpmError

SPLITS = ("training", "validation", "test")
_BATCH = 1 << 16


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
        base = _stem(Path(data_path))
        json_path = base.with_name(base.name + ".truth.json")
        folder = base.with_name(base.name + ".truth")
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for name, value in sorted(self.matrices().items()):
            path = folder / f"{name}_kT.csv"
            matrix_frame(value, self.alphabet).to_csv(path, index=False)
            files[name] = str(path.relative_to(json_path.parent))
        doc = {
            "model": self.model,
            "units": "kT (energies); kcal/mol = kT * kT_kcal_per_mol",
            "gauge": "zero mean at each position of every matrix; the offset absorbs the shifts",
            "kT_kcal_per_mol": self.kT_kcal_per_mol,
            "params": {k: float(v) for k, v in sorted(self.scalars().items())},
            "matrices": files,
            "simulation": self.meta,
        }
        json_path.write_text(json.dumps(doc, indent=2) + "\n")
        return json_path, folder


def _stem(path: Path) -> Path:
    name = path.name
    for suffix in (".gz", ".bz2", ".xz", ".zip", ".csv", ".tsv", ".txt", ".parquet", ".pq"):
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


# ---------------------------------------------------------------- models and parameters


def instantiate(model) -> torch.nn.Module:
    """A module instance from a path, model text, a compiled class or an instance."""
    if isinstance(model, torch.nn.Module):
        return model
    if isinstance(model, type) and issubclass(model, torch.nn.Module):
        return model()
    from bpm.compiler import load

    return load(model)()


def learned_names(module: torch.nn.Module) -> list[str]:
    """Names of ``get_params()`` that are learned (``nn.Parameter``), not fixed buffers."""
    return [
        key
        for key, (attr, _, _) in module._storage.items()
        if isinstance(getattr(module, attr), torch.nn.Parameter)
    ]


def zero_mean_gauge(params: Mapping[str, object], module: torch.nn.Module) -> dict:
    """Matrices with zero mean at every position, the offsets absorbing the shifts.

    The energies of every sequence are unchanged. Values come back as floats and
    numpy arrays.
    """
    out = {k: _as_numpy(v) for k, v in params.items()}
    for name in module.site_energies:
        if name not in out:
            continue
        matrix = np.asarray(out[name], dtype=float)
        means = matrix.mean(axis=1, keepdims=True)
        out[name] = matrix - means
        offset_key = f"{name}.offset"
        if offset_key in out:
            out[offset_key] = float(out[offset_key]) + float(means.sum())
    return out


def _as_numpy(value) -> float | np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    value = np.asarray(value, dtype=float)
    return float(value) if value.ndim == 0 else value


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
    Neighbour and pairwise tables get half the matrix scale.
    """
    current = module.get_params()
    out: dict[str, float | np.ndarray] = {}
    for key in learned_names(module):
        attr, how, bound = module._storage[key]
        shape = tuple(current[key].shape)
        base = key.split(".")[0]
        if key.endswith(".offset"):
            out[key] = 0.0
        elif base in module.site_energies and key == base:
            out[key] = rng.normal(0.0, matrix_sd, size=shape)
        elif base in module.site_energies:  # .neighbor / .pairwise
            out[key] = rng.normal(0.0, matrix_sd / 2, size=shape)
        elif how == "lower":
            out[key] = float(bound + np.exp(rng.normal(0.0, log_sd)))
        elif how == "upper":
            out[key] = float(bound - np.exp(rng.normal(0.0, log_sd)))
        elif key in getattr(module, "energy_names", ()):
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
    (other columns such as ``pos`` are ignored).
    """
    if isinstance(source, Mapping):
        return {k: _as_numpy(v) for k, v in source.items()}
    path = Path(source)
    if path.is_dir():
        summary = path / "summary.json"
        doc = json.loads(summary.read_text()) if summary.exists() else {}
        values = _scalars_from_doc(doc, module)
        folder = path / "params"
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
        values[name] = _read_matrix(path.parent / rel, module)
    sibling = path.with_name(path.name[: -len(".json")]) if path.name.endswith(".json") else None
    if sibling is not None and sibling.is_dir():
        for name, matrix in _matrices_from_folder(sibling, module).items():
            values.setdefault(name, matrix)
    return values


def _scalars_from_doc(doc: dict, module: torch.nn.Module | None) -> dict:
    """Parameter values in a JSON document: its ``params``/``parameters`` mapping or the
    top-level keys that name parameters of the module."""
    for key in ("params", "parameters"):
        if isinstance(doc.get(key), Mapping):
            doc = doc[key]
            break
    known = set(module._storage) if module is not None else None
    out = {}
    for key, value in doc.items():
        if known is not None and key not in known:
            continue
        if isinstance(value, Mapping):
            value = value.get("value", value.get("kT"))
        if isinstance(value, (int, float, list)):
            out[key] = _as_numpy(value)
    return out


def _matrices_from_folder(folder: Path, module: torch.nn.Module | None) -> dict:
    out = {}
    for path in sorted(folder.glob("*_kT.csv")):
        name = path.name[: -len("_kT.csv")]
        if module is not None and name not in module._storage:
            continue
        out[name] = _read_matrix(path, module)
    return out


def _read_matrix(path: Path, module: torch.nn.Module | None) -> np.ndarray:
    frame = pd.read_csv(path)
    alphabet = getattr(module, "alphabet", None) or "ACGT"
    letters = [c for c in frame.columns if str(c) in alphabet and len(str(c)) == 1]
    if sorted(letters) == sorted(alphabet):
        return frame[list(alphabet)].to_numpy(dtype=float)
    values = [c for c in frame.columns if str(c).startswith("v")]
    if values:
        return frame[values].to_numpy(dtype=float)
    raise BpmDataError(f"{path}: expected one column per letter of '{alphabet}'")


# ---------------------------------------------------------------- the library


def read_wild_type(value: str | Path, alphabet: str = "ACGT") -> str:
    """A wild-type sequence from a string, a text file, or a count table's consensus."""
    text = str(value)
    path = Path(text)
    if len(text) < 4096 and path.is_file():
        lower = path.name.lower()
        if any(s in lower for s in (".csv", ".tsv", ".parquet", ".pq")):
            from bpm.runtime.data import read_table

            return consensus(read_table(path)["x"].astype(str).to_numpy(), alphabet)
        lines = [ln.strip() for ln in path.read_text().splitlines()]
        text = "".join(ln for ln in lines if ln and not ln.startswith(">"))
    return text.strip().upper()


def consensus(sequences, alphabet: str = "ACGT") -> str:
    """The most common letter at each position of equal-length sequences."""
    codes = encode(sequences, alphabet)
    counts = np.stack([(codes == k).sum(0) for k in range(len(alphabet))], axis=1)
    return "".join(alphabet[k] for k in counts.argmax(1))


def encode(sequences, alphabet: str) -> np.ndarray:
    """``uint8[N, L]`` codes; ``ValueError`` for a letter outside the alphabet."""
    table = np.full(256, 255, dtype=np.uint8)
    for i, letter in enumerate(alphabet):
        table[ord(letter.upper())] = i
        table[ord(letter.lower())] = i
    seqs = [str(s) for s in sequences]
    raw = np.frombuffer("".join(seqs).encode("ascii"), dtype=np.uint8)
    codes = table[raw].reshape(len(seqs), -1)
    if (codes == 255).any():
        raise ValueError(f"letters outside '{alphabet}' in the sequences")
    return codes


def decode(codes: np.ndarray, alphabet: str) -> np.ndarray:
    """``uint8[N, L]`` codes back to an array of ``N`` strings (vectorized)."""
    letters = np.frombuffer(alphabet.encode("ascii"), dtype=np.uint8)
    raw = np.ascontiguousarray(letters[codes])
    return raw.view(f"S{codes.shape[1]}").ravel().astype(str)


def mutagenize(
    wild_type: np.ndarray, n: int, rate: float, n_letters: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` variants of ``wild_type`` (codes): each position independently replaced,
    with probability ``rate``, by one of the other letters drawn uniformly."""
    length = len(wild_type)
    mutated = rng.random((n, length), dtype=np.float32) < rate
    shift = rng.integers(1, n_letters, size=(n, length), dtype=np.uint8)
    codes = np.broadcast_to(wild_type.astype(np.uint8), (n, length)).copy()
    codes[mutated] = (codes[mutated] + shift[mutated]) % n_letters
    return codes


def outputs(module: torch.nn.Module, codes: np.ndarray, output: str | None = None) -> np.ndarray:
    """The model's output for every row of ``codes``, in batches, as float64."""
    result = np.empty(len(codes))
    with torch.no_grad():
        for start in range(0, len(codes), _BATCH):
            x = torch.from_numpy(codes[start : start + _BATCH].astype(np.int64))
            t = module(x)
            if isinstance(t, dict):
                t = t[output or module.output_names[0]]
            result[start : start + len(x)] = t.double().numpy()
    return result


def _site_energy_sums(module: torch.nn.Module, codes: np.ndarray) -> dict[str, np.ndarray]:
    """Each site energy of each row, without its offset (kT)."""
    with torch.no_grad():
        saved = {k: v for k, v in module.get_params().items() if k.endswith(".offset")}
        module.set_params({k: torch.zeros(()) for k in saved})
        sample = torch.from_numpy(codes.astype(np.int64))
        energies = {k: v.double().numpy() for k, v in module.energies(sample).items()}
        module.set_params(saved)
    return {k: energies[k] for k in module.site_energies}


# ---------------------------------------------------------------- the experiment


def simulate(
    model,
    *,
    n: int,
    wild_type: str | None = None,
    mutation_rate: float = 0.1,
    params: str | Path | Mapping | None = None,
    seed: int = 0,
    bins: int = 10,
    reads: int | None = None,
    noise: float = 0.5,
    site_energy_median: float = 1.0,
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    output: str | None = None,
    dtype: torch.dtype = torch.float64,
) -> tuple[pd.DataFrame, Truth]:
    """Simulate a sort-seq experiment; return the count table and the ground truth.

    - Library: ``n`` cells, each carrying a variant of ``wild_type`` (default: a random
      sequence from ``seed``) with every position substituted with probability
      ``mutation_rate``.
    - Truth: ``params`` (a dict, a JSON file, a fit directory; any subset) over random
      parameters drawn from ``seed`` (see :func:`random_params`). Offsets not given are
      set so that each site energy's median over the library is ``site_energy_median``
      kT (intermediate occupancy).
    - Expression: each cell's readout is ``log t + noise * N(0, 1)``.
    - Sort: cells go to ``bins`` bins at the quantiles of the readouts (equal numbers of
      cells per bin, dimmest first).
    - Sequencing: ``reads`` reads in all (default ``n``), split equally among bins; each
      read samples a cell of its bin uniformly with replacement (multinomial sampling).

    The table has one row per unique sequence with at least one read: ``x``,
    ``ct_0``..``ct_{bins-1}`` and ``set`` (a random ``split_fractions`` split).
    """
    if n < 1:
        raise BpmDataError(f"n must be positive, not {n}")
    if bins < 2:
        raise BpmDataError(f"need at least two bins, not {bins}")
    if not 0 <= mutation_rate <= 1:
        raise BpmDataError(f"mutation rate must be in [0, 1], not {mutation_rate}")
    if noise < 0:
        raise BpmDataError(f"noise must be >= 0, not {noise}")
    reads = n if reads is None else int(reads)
    if reads < 1:
        raise BpmDataError(f"reads must be positive, not {reads}")

    module = instantiate(model).to(dtype)
    if module.sequence_length is None:
        raise BpmError(f"model '{module.name}' has no sequence to mutagenize")
    alphabet = module.alphabet
    # Independent streams, so that changing one setting leaves the other draws alone.
    names = ("wt", "params", "library", "noise", "reads", "split")
    seeds = np.random.SeedSequence(seed).spawn(len(names))
    streams = {k: np.random.default_rng(s) for k, s in zip(names, seeds, strict=True)}

    # wild type
    if wild_type is None:
        wt_codes = streams["wt"].integers(0, len(alphabet), module.sequence_length)
        wild_type = "".join(alphabet[k] for k in wt_codes)
    wild_type = read_wild_type(wild_type, alphabet)
    if len(wild_type) != module.sequence_length:
        raise BpmDataError(
            f"wild type has {len(wild_type)} letters; model '{module.name}' reads "
            f"{module.sequence_length}"
        )
    try:
        wt_codes = encode([wild_type], alphabet)[0]
    except ValueError as exc:
        raise BpmDataError(f"wild type: {exc}") from exc

    # library
    codes = mutagenize(wt_codes, n, mutation_rate, len(alphabet), streams["library"])

    # truth
    truth_params = random_params(module, streams["params"])
    given = read_params(params, module) if params is not None else {}
    unknown = sorted(set(given) - set(module._storage))
    if unknown:
        raise BpmDataError(f"unknown parameter(s) {unknown}; the model has {list(module._storage)}")
    truth_params.update(given)
    module.set_params({k: torch.as_tensor(np.asarray(v)) for k, v in truth_params.items()})
    free_offsets = [
        f"{s}.offset"
        for s in module.site_energies
        if f"{s}.offset" not in given and f"{s}.offset" in learned_names(module)
    ]
    if free_offsets:
        sample = codes[: min(n, 20000)]
        sums = _site_energy_sums(module, sample)
        offsets = {
            k: site_energy_median - float(np.median(sums[k.split(".")[0]])) for k in free_offsets
        }
        module.set_params({k: torch.tensor(v) for k, v in offsets.items()})

    # expression, sort, sequencing
    t = outputs(module, codes, output)
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise BpmDataError(
            f"model '{module.name}' gave non-positive or non-finite outputs under these "
            "parameters; a log-normal readout needs t > 0"
        )
    readout = np.log(t) + noise * streams["noise"].standard_normal(n)
    order = np.argsort(readout, kind="stable")
    bin_of_rank = (np.arange(n) * bins) // n  # equal cells per bin, by rank
    cell_bin = np.empty(n, dtype=np.int64)
    cell_bin[order] = bin_of_rank
    edges = [float(readout[order[(k * n) // bins]]) for k in range(1, bins)]

    bin_start = np.searchsorted(bin_of_rank, np.arange(bins))
    bin_size = np.diff(np.append(bin_start, n))
    reads_per_bin = np.full(bins, reads // bins)
    reads_per_bin[: reads % bins] += 1
    read_bin = np.repeat(np.arange(bins), reads_per_bin)
    u = streams["reads"].random(reads)
    rank = bin_start[read_bin] + (u * bin_size[read_bin]).astype(np.int64)
    cell = order[rank]
    # reads per (cell, bin); a cell sits in one bin
    per_cell = np.bincount(cell, minlength=n)
    seen = np.flatnonzero(per_cell)

    # one row per unique sequence
    seen_codes = codes[seen]
    packed = np.ascontiguousarray(seen_codes).view(f"V{seen_codes.shape[1]}").ravel()
    _, first, inverse = np.unique(packed, return_index=True, return_inverse=True)
    n_unique = len(first)
    counts = np.zeros((n_unique, bins), dtype=np.int64)
    flat = inverse.ravel() * bins + cell_bin[seen]
    counts += (
        np.bincount(flat, weights=per_cell[seen], minlength=n_unique * bins)
        .reshape(n_unique, bins)
        .astype(np.int64)
    )
    row_order = np.argsort(first, kind="stable")  # first-seen order
    counts = counts[row_order]
    sequences = decode(seen_codes[first[row_order]], alphabet)

    split = _split(n_unique, split_fractions, streams["split"])
    table = pd.DataFrame({"x": sequences})
    for k in range(bins):
        table[f"ct_{k}"] = counts[:, k]
    table["set"] = split

    final = zero_mean_gauge(module.get_params(), module)
    fixed = set(module._storage) - set(learned_names(module))
    meta = {
        "n": int(n),
        "wild_type": wild_type,
        "mutation_rate": float(mutation_rate),
        "seed": int(seed),
        "bins": int(bins),
        "reads": int(reads),
        "noise": float(noise),
        "output": output or module.output_names[0],
        "bin_edges_log_t": edges,
        "unique_sequences": int(n_unique),
        "fixed": sorted(fixed),
        "params_given": sorted(given),
        "t_median": float(np.median(t)),
        "log_t_sd": float(np.std(np.log(t))),
    }
    truth = Truth(module.name, final, float(module.kT_kcal_per_mol), alphabet, meta)
    return table, truth


def _split(n: int, fractions, rng: np.random.Generator) -> np.ndarray:
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise BpmDataError(f"split fractions must be three numbers summing to 1, not {fractions}")
    order = rng.permutation(n)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    labels = np.empty(n, dtype=object)
    labels[order[:n_train]] = SPLITS[0]
    labels[order[n_train : n_train + n_val]] = SPLITS[1]
    labels[order[n_train + n_val :]] = SPLITS[2]
    return labels


def write(table: pd.DataFrame, truth: Truth, path: str | Path) -> dict[str, Path]:
    """Write the table (CSV, gzipped for ``.gz``; Parquet for ``.parquet``) and its truth."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".parquet", ".pq"):
        table.to_parquet(path, index=False)
    else:
        table.to_csv(path, index=False)
    json_path, folder = truth.save(path)
    return {"data": path, "truth": json_path, "matrices": folder}
