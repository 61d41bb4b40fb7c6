"""The encoded, memory-mapped store of a count table too large to hold in memory.

``encode_file(path)`` reads a count table in chunks (pandas ``chunksize``), checks every
chunk with :mod:`bpm.runtime.data`'s checks (the same :class:`BpmDataError` message as
:func:`~bpm.runtime.data.read_dataset`, rows numbered from the top of the file), and
writes it once as a store::

    codes.npy   uint8[N, L]    sequences as codes, rows ordered training, validation, test
    counts.npy  uint16/uint32[N, B]  reads per bin (the smallest type that holds them)
    meta.json   alphabet, bin names, split sizes, the data summary (what was set aside)

next to the data (``<file>.bpmstore/<key>/``) or, if that folder is not writable, in the
temporary directory; ``key`` hashes the file's size, modification time and the reading
options, so a changed file is encoded afresh. Memory stays at a chunk plus the encoded
arrays (95 bytes a row for 75 bp and 10 bins), not the CSV.

Everything that :func:`~bpm.runtime.data.read_dataset` does is done here too: rows with
no reads are set aside and duplicate sequences merged (counts summed, the most held-out
split), both counted in the same summary. Rows are only reordered (by split).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bpm.compiler.errors import BpmDataError, BpmError

from . import data
from .observations import file_kind

STORE_VERSION = 2  # 2: sequences read as text, validation carved from training
CHUNK_ROWS = 200_000
_MAX_COUNT = int(np.iinfo(np.uint32).max)  # what the raw counts file holds
_BLOCK = 1 << 16


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
    carve_validation: bool = True,
    cache_dir: str | Path | None = None,
    chunk_rows: int = CHUNK_ROWS,
    quiet: bool = True,
    **measured,
) -> Store:
    """Encode a count table into a memory-mapped :class:`Store` once; reuse it after.

    Takes the options of :func:`bpm.runtime.data.read_dataset` and checks the same
    things, chunk by chunk (without ``length``, sequences must have the most common
    length of the first chunk). A table of another measurement kind (``measured``: the
    options of :func:`bpm.runtime.observations.read_observations`) is refused: stores
    hold sort-seq reads only.
    """
    path = Path(path)
    if not path.exists():
        raise BpmDataError(f"data file not found: {path}")
    kind = file_kind(path, {"count_columns": count_columns, "count_prefix": count_prefix,
                            **measured})  # fmt: skip
    if kind != "sortseq":
        raise BpmError(
            f"{path}: a {kind} measurement is fitted full batch (in memory); streaming "
            "minibatches (--stream, --distributed, files over BPM_STREAM_THRESHOLD_BYTES) "
            "read sort-seq tables only so far: leave out --stream and --distributed "
            "(BPM_STREAM=0 forces a big file into memory)"
        )
    options = {
        "alphabet": alphabet,
        "length": length,
        "sequence_column": sequence_column,
        "count_columns": list(count_columns) if count_columns is not None else None,
        "count_prefix": count_prefix,
        "split_column": split_column,
        "split_fractions": list(split_fractions),
        "seed": seed if split_column is None else None,
        "carve_validation": carve_validation,
    }
    if carve_validation and split_column is not None:
        options["seed"] = seed  # the carved validation rows depend on it
    data.check_fractions(split_fractions)
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
    alphabet = options["alphabet"]
    started = time.perf_counter()
    problems = data.RowProblems()
    splits, state = [], None
    n_rows = n_empty = reads = 0
    read_options = dict(options, max_count=_MAX_COUNT)
    text = data.text_columns(options["sequence_column"], options["split_column"])
    with open(work / "codes.raw", "wb") as raw_codes, open(work / "counts.raw", "wb") as raw_counts:
        for chunk in data.read_chunks(path, chunk_rows, text):
            chunk, first_row = chunk.reset_index(drop=True), n_rows
            chunk.columns = [str(c) for c in chunk.columns]
            n_rows += len(chunk)
            state, (counts, seqs, split) = data.check_rows(
                chunk, str(path), read_options, problems, first_row, state
            )
            if problems:  # keep checking, to name every bad row, but write nothing more
                if problems.columns_bad() and state[0] is None:
                    break  # no count columns: nothing more to learn from the rows
                continue
            row_reads = counts.sum(1)
            reads += int(row_reads.sum())
            keep = row_reads > 0
            n_empty += int((~keep).sum())
            # Without a split column the split is drawn below over all rows, as
            # read_dataset draws it; 255 marks a row set aside.
            has_split = state[1] is not None
            splits.append(split[keep] if has_split else np.where(keep, 0, 255).astype(np.uint8))
            raw_codes.write(np.ascontiguousarray(data.encode(seqs[keep], alphabet)).tobytes())
            raw_counts.write(np.ascontiguousarray(counts[keep], dtype=np.uint32).tobytes())
            if not quiet:
                print(f"\rencoded {n_rows:,} rows", end="", file=sys.stderr)
    columns, split_column, length = state if state is not None else (None, None, None)
    if not quiet:
        print(file=sys.stderr)
    if state is None or (n_rows == 0 and not problems.columns_bad()):
        raise BpmDataError(f"{path} has no rows")
    problems.raise_if_any()
    if reads >= 2**63:
        raise BpmDataError(f"{path}: more than 2^63 reads in all; no count can hold them")
    split = np.concatenate(splits)
    if split_column is not None:
        split_source = f"column '{split_column}'"
    else:
        every, split_source = data.random_split(n_rows, options["split_fractions"], seed)
        split = every[split == 0]
    n = len(split)
    if n == 0:
        raise BpmDataError(f"{path}: no row has any reads")
    codes_raw = (work / "codes.raw", np.uint8, length)
    counts_raw = (work / "counts.raw", np.uint32, len(columns))
    keep, n_merged, n_conflicts = _merge_duplicates(codes_raw, counts_raw, split, str(path))
    carved = None
    if split_column is not None and options["carve_validation"]:
        carved = data.draw_validation(split, options["split_fractions"], seed, where=keep)
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
    ranges = {s: (int(bounds[k]), int(bounds[k + 1])) for s, k in data.SPLIT_CODE.items()}
    sizes = {s: b - a for s, (a, b) in ranges.items()}
    summary = data.summarize(
        str(path), n_rows, reads, columns, n_empty, n_merged, n_conflicts, split_source, sizes
    )
    summary = data.note_splits(summary, carved)
    summary["encoded_seconds"] = round(time.perf_counter() - started, 1)
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


def _merge_duplicates(codes_raw: tuple, counts_raw: tuple, split: np.ndarray, name: str):
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
            total = counts[head].astype(np.int64) + counts[row]
            if total.max() > _MAX_COUNT:
                raise BpmDataError(
                    f"{name}: the rows of one sequence hold more than {_MAX_COUNT} reads in "
                    f"one bin together (data row {row} among them, counting rows with reads)"
                )
            counts[head] = total
            if split[head] != split[row]:
                conflicted.add(group)  # as data.py counts: sequences seen under two splits
                split[head] = max(split[head], split[row])
            keep[row] = False
        counts.flush()
        del counts
        n_conflicts = len(conflicted)
    return keep, int(n - keep.sum()), n_conflicts
