"""Fitting on data too large for memory: an encoded, memory-mapped store and minibatches.

``encode_file(path)`` reads a count table in chunks (pandas ``chunksize``), checks every
chunk with :mod:`bpm.runtime.data`'s own checks (same :class:`BpmDataError` messages,
row numbers counted from the top of the file), and writes it once as a store::

    codes.npy   uint8[N, L]    sequences as codes, rows ordered training, validation, test
    counts.npy  uint16/uint32[N, B]  reads per bin (the smallest type that holds them)
    meta.json   alphabet, bin names, split sizes, the data summary (what was set aside)

next to the data (``<file>.bpmstore/<key>/``) or, if that folder is not writable, in the
temporary directory; ``key`` hashes the file's size, modification time and the reading
options, so a changed file is encoded afresh. ``fit_stream`` trains on the store with
minibatch Adam over shuffled blocks of rows, reading each batch from the memory map,
so memory grows with the encoded data (95 bytes a row for 75 bp and 10 bins), not with
the CSV, and time per sequence stays flat.

Everything that :func:`bpm.runtime.data.read_dataset` does is done here too: rows with no
reads are set aside and duplicate sequences merged (counts summed, the most held-out
split), both counted in the summary. Rows are only reordered (by split).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from bpm.compiler.errors import BpmDataError, BpmError

from . import data as _data
from .measurement import LOG2, OrdinalMeasurement

STORE_VERSION = 1
CHUNK_ROWS = 200_000
# Files at least this large (on disk) are fitted by streaming when fit() is handed a path.
# (estimated uncompressed: 10x a .gz/.bz2/.xz file, 5x Parquet; 100 MB is ~1M rows of 75 bp)
STREAM_THRESHOLD_BYTES = int(os.environ.get("BPM_STREAM_THRESHOLD_BYTES", 100 << 20))
_EXPANSION = {".gz": 10, ".bz2": 10, ".xz": 10, ".zip": 10, ".parquet": 5, ".pq": 5}
_SPLIT_CODE = {"training": 0, "validation": 1, "test": 2}


@dataclass
class Store:
    """An encoded count table: memory-mapped codes and counts, rows grouped by split.

    ``codes`` is ``uint8[N, L]``, ``counts`` ``uint16`` or ``uint32[N, B]``; rows
    ``ranges[split] = (start, stop)`` belong to ``split``.
    """

    path: Path
    codes: np.ndarray
    counts: np.ndarray
    alphabet: str
    bin_names: tuple[str, ...]
    ranges: dict[str, tuple[int, int]]
    summary: dict

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def n_bins(self) -> int:
        return self.counts.shape[1]

    def sizes(self) -> dict[str, int]:
        return {s: b - a for s, (a, b) in self.ranges.items()}


def open_store(path: str | Path) -> Store:
    """Open an encoded store (a folder written by :func:`encode_file`), memory-mapped."""
    path = Path(path)
    meta = json.loads((path / "meta.json").read_text())
    return Store(
        path=path,
        codes=np.load(path / "codes.npy", mmap_mode="r"),
        counts=np.load(path / "counts.npy", mmap_mode="r"),
        alphabet=meta["alphabet"],
        bin_names=tuple(meta["bin_names"]),
        ranges={k: tuple(v) for k, v in meta["ranges"].items()},
        summary=meta["summary"],
    )


# ---------------------------------------------------------------- encoding


def _renumber(message: str, offset: int) -> str:
    """Shift the 0-based row numbers in a :mod:`data` error message by ``offset``."""

    def shift(match: re.Match) -> str:
        numbers = ", ".join(str(int(n) + offset) for n in match.group(1).split(", "))
        return f"({numbers}{match.group(2) or ''}; 0-based data rows"

    return re.sub(r"\((\d+(?:, \d+)*)( and \d+ more)?; 0-based data rows", shift, message)


def _key(path: Path, options: Mapping) -> str:
    stat = path.stat()
    text = json.dumps(
        [STORE_VERSION, str(path.resolve()), stat.st_size, stat.st_mtime_ns, dict(options)],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _store_dir(path: Path, key: str, cache_dir: str | Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir) / f"{path.name}.{key}"
    beside = path.parent / f"{path.name}.bpmstore"
    try:
        beside.mkdir(exist_ok=True)
        probe = beside / f".probe{os.getpid()}"
        probe.touch()
        probe.unlink()
        return beside / key
    except OSError:
        return Path(tempfile.gettempdir()) / "bpm-store" / f"{path.name}.{key}"


def _reader(path: Path, chunk_rows: int):
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
        return
    stem = [s for s in suffixes if s not in (".gz", ".bz2", ".xz", ".zip")]
    sep = "\t" if stem and stem[-1] in (".tsv", ".tab", ".txt") else ","
    yield from pd.read_csv(path, sep=sep, chunksize=chunk_rows, keep_default_na=True)


def encode_file(
    path: str | Path,
    *,
    alphabet: str = "ACGT",
    length: int | None = None,
    sequence_column: str = "x",
    count_columns: Sequence[str] | None = None,
    count_prefix: str = "ct_",
    split_column: str | None = "set",
    split_fractions: Sequence[float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    cache_dir: str | Path | None = None,
    chunk_rows: int = CHUNK_ROWS,
    quiet: bool = True,
) -> Store:
    """Encode a count table into a memory-mapped :class:`Store` once; reuse it after.

    Takes the options of :func:`bpm.runtime.data.read_dataset` and checks the same
    things, chunk by chunk, so memory stays at a chunk plus the encoded arrays.
    """
    path = Path(path)
    if not path.exists():
        raise BpmDataError(f"data file not found: {path}")
    options = {
        "alphabet": alphabet,
        "length": length,
        "sequence_column": sequence_column,
        "count_columns": list(count_columns) if count_columns is not None else None,
        "count_prefix": count_prefix,
        "split_column": split_column,
        "split_fractions": list(split_fractions),
        "seed": seed if split_column is None else None,
    }
    target = _store_dir(path, _key(path, options), cache_dir)
    if (target / "meta.json").exists():
        return open_store(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
    try:
        _encode_into(work, path, options, chunk_rows, seed, quiet)
        try:
            work.rename(target)
        except OSError:  # another process finished first; use its store
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return open_store(target)


def _encode_into(work: Path, path: Path, options: dict, chunk_rows: int, seed: int, quiet):
    """Pass 1: check and append chunks as raw arrays; pass 2: merge, group by split."""
    alphabet, length = options["alphabet"], options["length"]
    started = time.perf_counter()
    raw_codes = open(work / "codes.raw", "wb")
    raw_counts = open(work / "counts.raw", "wb")
    splits = []
    columns = None
    n_rows = n_empty = reads = 0
    has_split = False
    try:
        for chunk in _reader(path, chunk_rows):
            start = n_rows
            n_rows += len(chunk)
            chunk = chunk.reset_index(drop=True)
            try:
                if columns is None:
                    if options["sequence_column"] not in chunk.columns:
                        raise BpmDataError(
                            f"no sequence column '{options['sequence_column']}' in {path}; "
                            f"columns are {list(chunk.columns)}"
                        )
                    columns = _data._count_columns(
                        chunk, options["count_columns"], options["count_prefix"]
                    )
                    has_split = (
                        options["split_column"] is not None
                        and options["split_column"] in chunk.columns
                    )
                counts = _data._check_counts(chunk, columns)
                seqs = _data._check_sequences(chunk[options["sequence_column"]], alphabet, length)
                if length is None:
                    length = len(seqs[0])
                if has_split:
                    labels, _ = _data._splits(chunk, options["split_column"], (1, 0, 0), 0)
                    split = np.array([_SPLIT_CODE[s] for s in labels], dtype=np.uint8)
                else:
                    split = np.zeros(len(chunk), dtype=np.uint8)  # drawn below, over all rows
            except BpmDataError as error:
                raise BpmDataError(_renumber(error.diagnostics[0].message, start)) from None
            if len(counts) and counts.max() > np.iinfo(np.uint32).max:
                rows = np.flatnonzero(counts.max(1) > np.iinfo(np.uint32).max) + start
                raise BpmDataError(f"read counts over 2**32 - 1 in {_data._rows(rows)}")
            row_reads = counts.sum(1)
            reads += int(row_reads.sum())
            keep = row_reads > 0
            n_empty += int((~keep).sum())
            if has_split:
                split = split[keep]
            else:  # the random split draws over all rows, as read_dataset does
                split = np.where(keep, 0, 255).astype(np.uint8)
            raw_codes.write(np.ascontiguousarray(_data.encode(seqs[keep], alphabet)).tobytes())
            raw_counts.write(np.ascontiguousarray(counts[keep], dtype=np.uint32).tobytes())
            splits.append(split)
            if not quiet:
                print(f"\rencoded {n_rows:,} rows", end="", file=sys.stderr)
    finally:
        raw_codes.close()
        raw_counts.close()
    if not quiet:
        print(file=sys.stderr)
    if n_rows == 0 or columns is None:
        raise BpmDataError(f"{path} has no rows")
    split = np.concatenate(splits)
    if has_split:
        split_source = f"column '{options['split_column']}'"
    else:
        frame = pd.DataFrame(index=range(n_rows))
        labels, split_source = _data._splits(frame, None, options["split_fractions"], seed)
        every = np.array([_SPLIT_CODE[s] for s in labels], dtype=np.uint8)
        split = every[split == 0]
    n = len(split)
    if n == 0:
        raise BpmDataError(f"{path}: no row has any reads")
    codes_raw, counts_raw = (
        (work / "codes.raw", np.uint8, length),
        (
            work / "counts.raw",
            np.uint32,
            len(columns),
        ),
    )
    keep, n_merged, n_conflicts = _merge_duplicates(codes_raw, counts_raw, split)
    bounds = np.cumsum([0] + [int((keep & (split == k)).sum()) for k in range(3)])
    biggest = max(int(_block(*counts_raw, a, a + _BLOCK).max()) for a in range(0, n, _BLOCK))
    dtype = np.uint16 if biggest < np.iinfo(np.uint16).max else np.uint32
    # Grouped by split, in file order within each: three sequential passes, written with
    # plain writes (a memory map of the output would count every page in this process).
    with open(work / "codes.npy", "wb") as f_codes, open(work / "counts.npy", "wb") as f_counts:
        for f, kind, width in ((f_codes, np.uint8, length), (f_counts, dtype, len(columns))):
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(kind))}
            header.update(fortran_order=False, shape=(int(bounds[-1]), width))
            np.lib.format.write_array_header_1_0(f, header)
        for k in range(3):
            for a in range(0, n, _BLOCK):
                chosen = keep[a : a + _BLOCK] & (split[a : a + _BLOCK] == k)
                f_codes.write(_block(*codes_raw, a, a + _BLOCK)[chosen].tobytes())
                f_counts.write(_block(*counts_raw, a, a + _BLOCK)[chosen].astype(dtype).tobytes())
    (work / "codes.raw").unlink()
    (work / "counts.raw").unlink()
    ranges = {s: (int(bounds[k]), int(bounds[k + 1])) for s, k in _SPLIT_CODE.items()}
    summary = {
        "source": str(path),
        "rows_read": n_rows,
        "reads": reads,
        "bins": len(columns),
        "count_columns": columns,
        "zero_read_rows_set_aside": n_empty,
        "duplicate_rows_merged": n_merged,
        "duplicate_split_conflicts": n_conflicts,
        "sequences": int(bounds[-1]),
        "split": split_source,
        **{f"n_{s}": b - a for s, (a, b) in ranges.items()},
        "encoded_seconds": round(time.perf_counter() - started, 1),
    }
    meta = {
        "version": STORE_VERSION,
        "alphabet": alphabet,
        "length": length,
        "bin_names": columns,
        "ranges": ranges,
        "summary": summary,
        "options": options,
    }
    (work / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


_BLOCK = 1 << 16


def _block(path: Path, dtype, width: int, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of a raw ``dtype[N, width]`` file, read through a short-lived map."""
    rows = path.stat().st_size // (np.dtype(dtype).itemsize * width)
    stop = min(stop, rows)
    if stop <= start:
        return np.zeros((0, width), dtype)
    offset = start * width * np.dtype(dtype).itemsize
    view = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(stop - start, width))
    out = np.array(view)
    del view
    return out


def _merge_duplicates(codes_raw: tuple, counts_raw: tuple, split: np.ndarray):
    """Merge rows with equal codes in place: the first keeps the summed counts and the
    most held-out split. Returns (rows kept, rows merged, split conflicts).

    Rows are hashed (a 64-bit polynomial of their codes) in chunks; only rows whose
    hash repeats are compared byte for byte, so memory stays at 9 bytes a row.
    """
    path, _, length = codes_raw
    n = len(split)
    weights = np.random.default_rng(12345).integers(1, 2**63, size=length, dtype=np.uint64)
    hashes = np.empty(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for a in range(0, n, _BLOCK):
            block = _block(*codes_raw, a, a + _BLOCK).astype(np.uint64) + np.uint64(1)
            hashes[a : a + len(block)] = (block * weights).sum(1, dtype=np.uint64)
    order = np.argsort(hashes, kind="stable")
    sorted_hashes = hashes[order]
    repeated = np.zeros(n, dtype=bool)
    same = sorted_hashes[1:] == sorted_hashes[:-1]
    repeated[1:] |= same
    repeated[:-1] |= same
    keep = np.ones(n, dtype=bool)
    candidates = np.sort(order[repeated])
    n_conflicts = 0
    if len(candidates):
        codes = np.memmap(path, dtype=np.uint8, mode="r", shape=(n, length))
        packed = np.ascontiguousarray(codes[candidates]).view(f"V{length}").ravel()
        del codes
        _, inverse = np.unique(packed, return_inverse=True)
        inverse = inverse.ravel()
        counts = np.memmap(counts_raw[0], dtype=np.uint32, mode="r+", shape=(n, counts_raw[2]))
        first, conflicted = {}, set()
        for row, group in zip(candidates.tolist(), inverse.tolist(), strict=True):
            if group not in first:
                first[group] = row
                continue
            head = first[group]
            counts[head] += counts[row]
            if split[head] != split[row]:
                conflicted.add(group)  # as data.py counts: sequences seen under two splits
                split[head] = max(split[head], split[row])
            keep[row] = False
        counts.flush()
        del counts
        n_conflicts = len(conflicted)
    return keep, int(n - keep.sum()), n_conflicts


# ---------------------------------------------------------------- training


def wants_stream(data, data_options: Mapping | None = None) -> bool:
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
    factor = _EXPANSION.get(path.suffix.lower(), 1)
    return path.stat().st_size * factor >= STREAM_THRESHOLD_BYTES


class Joint(nn.Module):
    """The biophysical module and its measurement process as one module (for DDP)."""

    def __init__(self, module: nn.Module, measurement: OrdinalMeasurement, output: str):
        super().__init__()
        self.module = module
        self.measurement = measurement
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from .fit import select_output

        return self.measurement.log_probs(select_output(self.module(x), self.output))


def batches(n_rows: int, block_rows: int, blocks_per_batch: int, seed: int, epoch: int):
    """The epoch's batches as lists of ``(start, stop)`` row blocks; same for every rank.

    Blocks of ``block_rows`` contiguous rows, shuffled by ``(seed, epoch)``; the blocks
    left over after the last full batch wait for a later epoch's shuffle.
    """
    starts = np.arange(0, n_rows, block_rows)
    rng = np.random.default_rng([seed, epoch])
    starts = starts[rng.permutation(len(starts))]
    for b in range(len(starts) // blocks_per_batch):
        chosen = sorted(starts[b * blocks_per_batch : (b + 1) * blocks_per_batch].tolist())
        yield [(s, min(s + block_rows, n_rows)) for s in chosen]


def _read(store: Store, offset: int, blocks, device) -> tuple[torch.Tensor, torch.Tensor]:
    x = np.concatenate([store.codes[offset + a : offset + b] for a, b in blocks])
    c = np.concatenate([store.counts[offset + a : offset + b] for a, b in blocks])
    return (
        torch.from_numpy(x.astype(np.int64)).to(device),
        torch.from_numpy(c.astype(np.float32)).to(device),
    )


@dataclass
class Comm:
    """Where this process sits among the training processes (1 of 1 when alone)."""

    rank: int = 0
    world: int = 1

    def sum(self, values: list[float], device) -> list[float]:
        if self.world == 1:
            return values
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()


def evaluate_store(
    joint: Joint, store: Store, split: str, device, comm: Comm, limit=None, batch: int = 65536
) -> dict:
    """``{"nll", "I_var_bits"}`` on ``split`` (its first ``limit`` rows), in chunks;
    with several processes each takes a share of the chunks and the sums are reduced."""
    start, stop = store.ranges[split]
    if limit is not None:
        stop = min(stop, start + limit)
    joint.eval()
    total = np.zeros(2 + store.n_bins)
    with torch.no_grad():
        for k, a in enumerate(range(start, stop, batch)):
            if k % comm.world != comm.rank:
                continue
            x, c = _read(store, 0, [(a, min(a + batch, stop))], device)
            total[0] += float(-(c * joint(x)).sum())
            total[1] += float(c.sum())
            total[2:] += c.sum(0).double().cpu().numpy()
    total = np.array(comm.sum(total.tolist(), device))
    if total[1] == 0:
        return {"nll": float("nan"), "I_var_bits": float("nan")}
    nll = total[0] / total[1] / LOG2
    p = total[2:] / total[1]
    p = p[p > 0]
    return {"nll": float(nll), "I_var_bits": float(-(p * np.log2(p)).sum() - nll)}


def fit_stream(
    model,
    data,
    *,
    seed: int = 0,
    device: str = "cpu",
    epochs: int | None = None,
    min_steps: int = 600,
    batch_size: int = 8192,
    block_rows: int = 512,
    lr: float = 0.05,
    restandardize_at: float = 0.1,
    eval_every: int = 200,
    val_rows: int = 100_000,
    patience: int = 5,
    hidden: int = 8,
    output: str | None = None,
    transform: str = "auto",
    init: Mapping[str, float] | None = None,
    fix: Sequence[str] = (),
    threads: int | None = 1,
    quiet: bool = False,
    data_options: Mapping | None = None,
    cache_dir: str | Path | None = None,
    comm: Comm | None = None,
    pin: bool = True,
    from_data: bool = False,
    max_steps: int | None = None,
):
    """Fit ``model`` to ``data`` (a path, or a :class:`Store`) by minibatch Adam.

    Epochs (default: enough for ``min_steps`` steps, at least 3) over the training rows
    in shuffled blocks of ``block_rows`` rows, ``batch_size`` rows a step (rounded to
    whole blocks), a one-cycle schedule peaking at ``lr``,
    validation on the first ``val_rows`` validation rows every ``eval_every`` steps and
    at each epoch's end, stopping after ``patience`` evaluations without improvement
    (the best state is kept). The same seed gives the same fit. With ``comm`` (set by
    :mod:`bpm.runtime.distributed`), each process reads its share of every batch's blocks
    and DistributedDataParallel averages the gradients; the loss is normalized by the
    whole batch, so any number of processes takes the same steps as one.
    """
    from .fit import (
        FitResult,
        _deterministic,
        choose_output,
        initialize,
        pin_consensus,
        resolve_model,
    )

    started = time.perf_counter()
    comm = comm or Comm()
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise BpmError("device 'cuda' requested but torch sees no CUDA device")
    cls, source, model_path = resolve_model(model)
    output = choose_output(cls, output)
    if getattr(cls, "alphabet", None) is None:
        raise BpmError(f"model '{cls.name}' has no sequence; there is nothing to fit to reads")
    options = dict(data_options or {})
    options.setdefault("alphabet", cls.alphabet)
    options.setdefault("length", cls.sequence_length)
    options.setdefault("seed", seed)
    store = (
        data
        if isinstance(data, Store)
        else encode_file(data, cache_dir=cache_dir, quiet=quiet, **options)
    )
    sizes = store.sizes()
    if sizes["training"] == 0 or sizes["validation"] == 0:
        raise BpmError(f"need training and validation reads; the split gives {sizes}")
    n_train = sizes["training"]
    n_blocks = math.ceil(n_train / block_rows)
    per_batch = max(1, min(batch_size // block_rows, n_blocks))
    per_batch = max(comm.world, per_batch - per_batch % comm.world)
    if n_blocks < per_batch:
        raise BpmError(
            f"{n_train} training rows make {n_blocks} blocks of {block_rows}; "
            f"{comm.world} processes need at least {per_batch}"
        )
    steps_per_epoch = n_blocks // per_batch
    if epochs is None:  # small data: enough epochs for min_steps steps; large: a few
        epochs = min(200, max(3, math.ceil(min_steps / steps_per_epoch)))
    total_steps = epochs * steps_per_epoch
    if max_steps is not None:
        total_steps = min(total_steps, max_steps)
    eval_every = max(1, min(eval_every, steps_per_epoch))
    t0_start, _ = store.ranges["training"]
    sample = min(n_train, 20_000)
    sample_codes = np.asarray(store.codes[:sample])
    sample_counts = np.asarray(store.counts[:sample]).astype(np.int64)

    with _deterministic(seed, threads if str(device) == "cpu" else None):
        module = cls().to(device)
        if from_data:
            initialize(module, init, codes=sample_codes, counts=sample_counts)
        else:
            initialize(module, init)
        x_sample = torch.from_numpy(sample_codes.astype(np.int64)).to(device)
        from .fit import select_output

        with torch.no_grad():
            t0 = select_output(module(x_sample), output)
        if transform == "auto":
            transform = "log" if bool((t0 > 0).all()) else "identity"
        u0 = torch.log(t0) if transform == "log" else t0
        measurement = OrdinalMeasurement(
            store.n_bins,
            hidden=hidden,
            transform=transform,
            center=float(u0.mean()),
            scale=max(float(u0.std()), 1.0),
        ).to(device)
        bin_totals = np.zeros(store.n_bins)
        for a in range(0, n_train, 1 << 20):
            bin_totals += store.counts[a : min(a + (1 << 20), n_train)].sum(0, dtype=np.int64)
        mean_reads = float(bin_totals.sum()) / n_train
        bins = torch.tensor(bin_totals, dtype=torch.float32, device=device)
        measurement.set_cutpoints(torch.cumsum(bins, 0) / bins.sum())
        with torch.no_grad():
            measurement.raw_out.fill_(-20.0)
        known = module.get_params()
        unknown = sorted(set(fix) - set(known))
        if unknown:
            raise BpmError(f"fix names {unknown}, not parameters of the model ({sorted(known)})")
        fixed = {name: known[name].clone() for name in fix}
        hooks = pin_consensus(module, sample_codes) if pin else []
        joint = Joint(module, measurement, output)
        trained = joint
        if comm.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [torch.device(device).index] if str(device).startswith("cuda") else None
            trained = DistributedDataParallel(joint, device_ids=ids)
        params = [p for p in trained.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr, total_steps=max(total_steps, 1), pct_start=0.15
        )
        restd_step = max(1, int(restandardize_at * total_steps))
        history, best, best_val, since, step = [], None, math.inf, 0, 0
        seen_rows, train_sum, train_reads = 0, 0.0, 0.0
        epoch_seconds, eval_seconds, epoch_rows = [], [], []
        done = False
        for epoch in range(epochs):
            epoch_started = time.perf_counter()
            eval_seconds.append(0.0)
            epoch_rows.append(0)
            for blocks in batches(n_train, block_rows, per_batch, seed, epoch):
                step += 1
                if step == restd_step:
                    with torch.no_grad():
                        measurement.restandardize(select_output(module(x_sample), output))
                rows = sum(b - a for a, b in blocks)
                mine = blocks[comm.rank :: comm.world]
                x, c = _read(store, t0_start, mine, device)
                trained.train()
                opt.zero_grad(set_to_none=True)
                total = -(c * trained(x)).sum()
                loss = total * (comm.world / (mean_reads * rows))
                if not torch.isfinite(loss):
                    raise BpmError(
                        f"the fit diverged at step {step} (loss {float(loss)}); "
                        "try a smaller learning rate (--lr) or other initial values"
                    )
                loss.backward()
                opt.step()
                sched.step()
                if fixed:
                    module.set_params(fixed)
                seen_rows += rows
                epoch_rows[-1] += rows
                train_sum += float(total.detach())
                train_reads += float(c.sum())
                last = step == total_steps
                if step % eval_every == 0 or last:
                    eval_started = time.perf_counter()
                    s, r = comm.sum([train_sum, train_reads], device)
                    train_sum = train_reads = 0.0
                    val = evaluate_store(joint, store, "validation", device, comm, val_rows)
                    train_nll = s / max(r, 1e-9) / LOG2
                    history.append(
                        {
                            "step": step,
                            "epoch": epoch + (seen_rows % n_train) / n_train,
                            "train_nll": train_nll,
                            "val_nll": val["nll"],
                            "train_I_var_bits": float("nan"),
                            "val_I_var_bits": val["I_var_bits"],
                        }
                    )
                    if not quiet and comm.rank == 0:
                        print(
                            f"step {step} epoch {epoch} train {train_nll:.4f} "
                            f"val {val['nll']:.4f} bits I_var {val['I_var_bits']:.3f}",
                            file=sys.stderr,
                        )
                    eval_seconds[-1] += time.perf_counter() - eval_started
                    if val["nll"] < best_val - 1e-5:
                        best_val, since = val["nll"], 0
                        best = {k: v.detach().clone() for k, v in joint.state_dict().items()}
                    elif step > restd_step:
                        since += 1
                        done = since >= patience
                if done or last:
                    break
            epoch_seconds.append(time.perf_counter() - epoch_started)
            if done or step >= total_steps:
                break
        for hook in hooks:
            hook.remove()
        if best is not None:
            joint.load_state_dict(best)
        metrics = {s: evaluate_store(joint, store, s, device, comm) for s in _data.SPLITS}
    p = bin_totals / bin_totals.sum()
    h_train = float(-(p[p > 0] * np.log2(p[p > 0])).sum())
    for h in history:
        h["train_I_var_bits"] = h_train - h["train_nll"]
    summary = dict(store.summary)
    summary["training"] = {
        "mode": "stream",
        "processes": comm.world,
        "batch_rows": per_batch * block_rows,
        "block_rows": block_rows,
        "steps_per_epoch": steps_per_epoch,
        "epoch_seconds": [round(s, 4) for s in epoch_seconds],
        "eval_seconds": [round(s, 4) for s in eval_seconds],  # validation, within each epoch
        "epoch_rows": epoch_rows,  # training rows stepped on in each epoch
        "store": str(store.path),
    }
    return FitResult(
        module=module,
        measurement=measurement,
        output=output,
        metrics=metrics,
        history=history,
        epochs=step,
        wall_seconds=time.perf_counter() - started,
        seed=seed,
        data_summary=summary,
        sizes=sizes,
        source=source,
        model_path=model_path,
        data_path=str(data) if isinstance(data, (str, Path)) else str(store.path),
        dataset=None,
    )
