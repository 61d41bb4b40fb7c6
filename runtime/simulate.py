"""Simulated sort-seq experiments with known parameters.

``simulate(model, n=...)`` draws a mutagenized library around a wild-type sequence
(:mod:`bpm.runtime.library`), computes every variant's output with the compiled model
under ground-truth parameters (:mod:`bpm.runtime.truth`), gives each cell a log-normal
expression readout around it, sorts the cells into bins at the quantiles of the
readouts, and sequences each bin by sampling reads from its cells. The result is a
count table in the layout ``bpm fit`` reads (``x``, ``ct_0``..``ct_{B-1}``, ``set``) and
the ground truth it came from. The output simulated is the one fitting uses
(:func:`bpm.runtime.contract.choose_output`: ``t`` unless told otherwise).

Everything is vectorized (numpy for the library and the sort, torch in batches for
``t``), so a million sequences take seconds, and the same seed gives the same table.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bpm.compiler.errors import BpmDataError, BpmError
from bpm.runtime.contract import (
    choose_output,
    complement,
    kT_kcal_per_mol,
    layout,
    learned_names,
    numbering,
    resolve_model,
    select_output,
    site_energies,
    zero_mean_gauge,
)
from bpm.runtime.library import consensus, decode, encode, mutagenize, read_wild_type
from bpm.runtime.table_output import write_table
from bpm.runtime.truth import Truth, matrix_frame, random_params, read_params

__all__ = [
    "SPLITS",
    "Truth",
    "consensus",
    "decode",
    "encode",
    "instantiate",
    "learned_names",
    "matrix_frame",
    "mutagenize",
    "outputs",
    "random_params",
    "read_params",
    "read_wild_type",
    "simulate",
    "write",
    "zero_mean_gauge",
]

SPLITS = ("training", "validation", "test")
_BATCH = 1 << 16


def instantiate(model) -> torch.nn.Module:
    """A module instance from a path, model text, a compiled class or an instance."""
    if isinstance(model, torch.nn.Module):
        return model
    return resolve_model(model)[0]()


def outputs(module: torch.nn.Module, codes: np.ndarray, output: str | None = None) -> np.ndarray:
    """The model's output for every row of ``codes``, in batches, as float64.

    ``output`` names it; by default the one fitting uses (``choose_output``).
    """
    name = choose_output(module, output)
    result = np.empty(len(codes))
    with torch.no_grad():
        for start in range(0, len(codes), _BATCH):
            x = torch.from_numpy(codes[start : start + _BATCH].astype(np.int64))
            t = select_output(module(x), name)
            result[start : start + len(x)] = t.double().numpy()
    return result


def _site_energy_sums(module: torch.nn.Module, codes: np.ndarray) -> dict[str, np.ndarray]:
    """Each site energy of each row, without its offset (kT)."""
    offsets = [name for name, slot in layout(module).items() if slot.kind == "offset"]
    with torch.no_grad():
        saved = {k: v for k, v in module.get_params().items() if k in offsets}
        module.set_params({k: torch.zeros(()) for k in saved})
        sample = torch.from_numpy(codes.astype(np.int64))
        energies = {k: v.double().numpy() for k, v in module.energies(sample).items()}
        module.set_params(saved)
    return {k: energies[k] for k in site_energies(module)}


def _check_settings(n, bins, mutation_rate, noise, reads, floor=0.0, background=0.0) -> int:
    """The settings' errors in words; returns the number of reads (default ``n``)."""
    if not floor >= 0:
        raise BpmDataError(f"floor must be >= 0, not {floor}")
    if not 0 <= background < 1:
        raise BpmDataError(f"background must be a fraction in [0, 1), not {background}")
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
    return reads


def _wild_type_codes(module, wild_type, rng) -> tuple[str, np.ndarray]:
    """The wild type (random from ``rng`` when None) and its codes, checked against the model."""
    alphabet = module.alphabet
    if wild_type is None:
        wt_codes = rng.integers(0, len(alphabet), module.sequence_length)
        wild_type = "".join(alphabet[k] for k in wt_codes)
    wild_type = read_wild_type(wild_type, alphabet)
    if len(wild_type) != module.sequence_length:
        raise BpmDataError(
            f"wild type has {len(wild_type)} letters; model '{module.name}' reads "
            f"{module.sequence_length}"
        )
    try:
        return wild_type, encode([wild_type], alphabet)[0]
    except ValueError as exc:
        raise BpmDataError(f"wild type: {exc}") from exc


def _set_truth(module, codes, params, rng, site_energy_median) -> dict:
    """Random parameters under the given ones, offsets from the library; returns the given."""
    truth_params = random_params(module, rng)
    given = read_params(params, module) if params is not None else {}
    names = list(layout(module))
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise BpmDataError(f"unknown parameter(s) {unknown}; the model has {names}")
    truth_params.update(given)
    module.set_params({k: torch.as_tensor(np.asarray(v)) for k, v in truth_params.items()})
    learned = learned_names(module)
    free_offsets = [
        f"{s}.offset"
        for s in site_energies(module)
        if f"{s}.offset" not in given and f"{s}.offset" in learned
    ]
    if free_offsets:
        sums = _site_energy_sums(module, codes[: min(len(codes), 20000)])
        offsets = {
            k: site_energy_median - float(np.median(sums[k.split(".")[0]])) for k in free_offsets
        }
        module.set_params({k: torch.tensor(v) for k, v in offsets.items()})
    return given


def _sort_and_sequence(readout, bins, reads, rng) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Cells into ``bins`` equal bins by readout; ``reads`` reads sampled within bins.

    Returns each cell's bin, each cell's number of reads and the bin edges.
    """
    n = len(readout)
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
    u = rng.random(reads)
    rank = bin_start[read_bin] + (u * bin_size[read_bin]).astype(np.int64)
    cell = order[rank]
    # reads per (cell, bin); a cell sits in one bin
    return cell_bin, np.bincount(cell, minlength=n), edges


def _background(readout: np.ndarray, fraction: float, rng) -> np.ndarray:
    """A ``fraction`` of cells, drawn at random, take the readout of a random cell."""
    chosen = np.flatnonzero(rng.random(len(readout)) < fraction)
    out = readout.copy()
    out[chosen] = readout[rng.integers(0, len(readout), len(chosen))]
    return out


def _draw_from(measurement, t, reads, cell_rng, read_rng) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's bin drawn from ``measurement``'s ``p(bin | t)``; ``reads`` reads, each
    from a cell of the library at random. Returns each cell's bin and number of reads."""
    cell_bin = np.empty(len(t), dtype=np.int64)
    with torch.no_grad():
        for start in range(0, len(t), _BATCH):
            p = measurement(torch.from_numpy(t[start : start + _BATCH])).numpy()
            cum = np.cumsum(p / p.sum(1, keepdims=True), axis=1)
            u = cell_rng.random(len(p))[:, None]
            cell_bin[start : start + len(p)] = np.minimum((u > cum).sum(1), p.shape[1] - 1)
    per_cell = np.bincount(read_rng.integers(0, len(t), reads), minlength=len(t))
    return cell_bin, per_cell


def read_dispersion(per_cell: np.ndarray) -> float:
    """Sum of k^2 over sum of k, k a cell's reads: the ``dispersion`` to fit such reads with
    (1 when each read is a cell of its own; 2.0 for reads drawn from as many cells)."""
    k = np.asarray(per_cell, dtype=np.float64)
    return float((k * k).sum() / k.sum()) if k.sum() > 0 else 1.0


def _count_table(codes, cell_bin, per_cell, bins) -> tuple[np.ndarray, np.ndarray]:
    """One row per unique sequence with reads, in first-seen order: its codes and counts."""
    seen = np.flatnonzero(per_cell)
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
    return seen_codes[first[row_order]], counts[row_order]


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
    floor: float = 0.0,
    background: float = 0.0,
    measurement_from: str | Path | None = None,
    measurement: str = "sortseq",
    dy: bool = False,
) -> tuple[pd.DataFrame, Truth]:
    """Simulate a sort-seq experiment; return the count table and the ground truth.

    ``measurement="continuous"`` (a score ``y``, with ``dy`` its standard errors) or
    ``"counts"`` (``input_ct``, ``selected_ct``) measures the library's unique variants
    instead of sorting cells (:mod:`bpm.runtime.simulate_measured`: the processes).

    - Library: ``n`` cells, each carrying a variant of ``wild_type`` (default: a random
      sequence from ``seed``) with every position substituted with probability
      ``mutation_rate``.
    - Truth: ``params`` (a dict, a JSON file, a fit directory; any subset) over random
      parameters drawn from ``seed`` (see :func:`random_params`). Offsets not given are
      set so that each site energy's median over the library is ``site_energy_median``
      kT (intermediate occupancy).
    - Expression: each cell's readout is ``log(t + floor) + noise * N(0, 1)``, ``t`` the
      model's output ``output`` (default: the one fitting uses, ``t`` when several);
      a fraction ``background`` of the cells is sorted regardless of its reporter: its
      readout is that of a cell drawn at random from the library. This is the process
      of :class:`~bpm.runtime.measurement_affine.AffineMeasurement` with ``a = 0``,
      ``b = 1``, ``sigma = noise`` and the recorded gates.
    - Sort: cells go to ``bins`` bins at the quantiles of the readouts (equal numbers of
      cells per bin, dimmest first); the inner edges are ``bin_edges_log_t``.
    - Or, with ``measurement_from`` (a ``bpm fit -o`` directory): the truth defaults to
      that fit's parameters (``params`` still overrides), each cell's bin is drawn from
      the fit's own measurement process ``p(bin | t)``, and each read picks a cell of
      the library at random (``bins``, ``noise``, ``floor`` and ``background`` unused).
    - Sequencing: ``reads`` reads in all (default ``n``), split equally among bins; each
      read samples a cell of its bin uniformly with replacement (multinomial sampling).

    The table has one row per unique sequence with at least one read: ``x``,
    ``ct_0``..``ct_{bins-1}`` and ``set`` (a random ``split_fractions`` split).
    """
    from .simulate_measured import check_measured, draw

    reads = check_measured(measurement, n, reads, dy, background, measurement_from)
    reads = _check_settings(n, bins, mutation_rate, noise, reads, floor, background)
    fitted = None
    if measurement_from is not None:
        from bpm.runtime.load import load_fit

        fitted = load_fit(measurement_from).measurement.double()
        bins = fitted.n_bins
        params = measurement_from if params is None else params
    module = instantiate(model).to(dtype)
    if module.sequence_length is None:
        raise BpmError(f"model '{module.name}' has no sequence to mutagenize")
    output = choose_output(module, output)
    alphabet = module.alphabet
    # Independent streams, so that changing one setting leaves the other draws alone.
    names = ("wt", "params", "library", "noise", "reads", "split", "background", "measured")
    seeds = np.random.SeedSequence(seed).spawn(len(names))
    streams = {k: np.random.default_rng(s) for k, s in zip(names, seeds, strict=True)}

    wild_type, wt_codes = _wild_type_codes(module, wild_type, streams["wt"])
    codes = mutagenize(wt_codes, n, mutation_rate, len(alphabet), streams["library"])
    given = _set_truth(module, codes, params, streams["params"], site_energy_median)

    # expression, sort, sequencing
    t = outputs(module, codes, output)
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise BpmDataError(
            f"model '{module.name}' gave non-positive or non-finite outputs under these "
            "parameters; a log-normal readout needs t > 0"
        )
    process = edges = None
    if measurement != "sortseq":
        rngs = {
            "noise": streams["noise"],
            "library": streams["measured"],
            "reads": streams["reads"],
        }
        t_wt = float(outputs(module, wt_codes[None], output)[0])
        args = {"noise": noise, "floor": floor, "reads": reads, "dy": dy, "background": background}
        rows, columns, process = draw(measurement, codes, t, t_wt, rngs, **args)
        row_codes = codes[rows]
    elif fitted is None:
        readout = np.log(t + floor) + noise * streams["noise"].standard_normal(n)
        if background > 0:
            readout = _background(readout, background, streams["background"])
        cell_bin, per_cell, edges = _sort_and_sequence(readout, bins, reads, streams["reads"])
    else:
        cell_bin, per_cell = _draw_from(fitted, t, reads, streams["noise"], streams["reads"])
        edges = fitted.cutpoints().tolist() if getattr(fitted, "gated", False) else None
    if process is None:
        row_codes, counts = _count_table(codes, cell_bin, per_cell, bins)
        columns = {f"ct_{k}": counts[:, k] for k in range(bins)}

    split = _split(len(row_codes), split_fractions, streams["split"])
    table = pd.DataFrame({"x": decode(row_codes, alphabet)})
    for name, values in columns.items():  # assigned one by one: copies, writable
        table[name] = values
    table["set"] = split

    final = zero_mean_gauge(module.get_params(), module)
    fixed = set(layout(module)) - set(learned_names(module))
    meta = {
        "n": int(n),
        "wild_type": wild_type,
        "mutation_rate": float(mutation_rate),
        "seed": int(seed),
        "bins": int(bins),
        "reads": int(reads),
        "noise": float(noise),
        "floor": float(floor),
        "background": float(background),
        "output": output,
        "bin_edges_log_t": edges,
        "unique_sequences": int(len(row_codes)),
        "fixed": sorted(fixed),
        "params_given": sorted(given),
        "t_median": float(np.median(t)),
        "log_t_sd": float(np.std(np.log(t))),
    }
    meta["measurement_kind"] = measurement
    meta["read_dispersion"] = read_dispersion(per_cell) if process is None else None
    if process is not None:
        meta.update(bins=None, bin_edges_log_t=None, measurement=process)
    if fitted is not None:
        meta.update(noise=None, floor=None, background=None)
        meta["measurement_from"] = str(measurement_from)
        meta["measurement"] = {"config": fitted.config(), "floor": fitted.floor()}
        if edges is None:
            del meta["bin_edges_log_t"]
    sites = site_energies(module)
    comp = tuple(complement(module)) if any(s.get("revcomp") for s in sites.values()) else None
    kT = kT_kcal_per_mol(module)
    return table, Truth(module.name, final, kT, alphabet, meta, sites, comp, numbering(module))


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
    """Write the table in the format its suffix names (:func:`~.table_output.write_table`:
    ``.csv``, ``.tsv``, either ``.gz``, ``.parquet``) and its truth beside it."""
    path = write_table(table, path)
    json_path, folder = truth.save(path)
    return {"data": path, "truth": json_path, "matrices": folder}
