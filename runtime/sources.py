"""Where the training core's batches come from: the whole training split in memory, or
minibatches of row blocks read from a memory-mapped store, shared among processes.

A source is an iterable of :class:`Batch` (one per optimizer step) with ``entropy_bits``
(of the training reads' bin distribution, for I_var) and ``sample`` (codes of up to
20,000 training rows, for starting values and re-standardizing the measurement).
Evaluation reads splits as chunks (:func:`tensor_chunks`, :func:`store_chunks`).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from bpm.compiler.errors import BpmError

#: Rows of the sample that starting values and re-standardizing look at.
SAMPLE_ROWS = 20_000
#: Rows per chunk when a split is evaluated from a store.
EVAL_CHUNK = 65_536


@dataclass
class Batch:
    """One step's rows: codes ``x`` ``[n, L]``, observations ``obs`` ``[n, B]`` and ``norm``,
    the number the summed negative log-likelihood is divided by (all the step's reads,
    over every process), so that any number of processes takes the same step."""

    x: torch.Tensor | None
    obs: torch.Tensor | None
    norm: float
    epoch: float | None = None
    #: for a batch too large to hold at once: a callable yielding its ``(x, obs)`` parts
    parts: Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]] | None = None


@dataclass
class Comm:
    """Where this process sits among the training processes (1 of 1 when alone)."""

    rank: int = 0
    world: int = 1

    def sum(self, values: list[float], device) -> list[float]:
        """``values`` summed over every process (unchanged when alone)."""
        if self.world == 1:
            return values
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()

    def sum_gradients(self, params) -> None:
        """Every parameter's gradient summed over the processes (a missing one as zero,
        so that every process takes part in the same reductions)."""
        if self.world == 1:
            return
        import torch.distributed as dist

        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)


def entropy_bits(totals) -> float:
    """Entropy in bits of the bin distribution with reads ``totals`` per bin."""
    p = np.asarray(totals, dtype=float)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log2(p)).sum())


def column_major(x: torch.Tensor) -> torch.Tensor:
    """A table ``[N, k]`` stored column after column (each column contiguous over the
    rows), the same values, shape and device; a no-op for one already so laid out.

    The layout of the batches and evaluation chunks of a fit: codes one position after
    another, as the generated modules read them (their ``x.T.contiguous()`` is then a
    view, not a copy at every pass), reads one bin after another, as the sort-seq
    measurement computes with them. The splits they come from stay row after row: a
    minibatch's rows drawn from a column-major split would each touch a cache line per
    column (the GB1 fit's Adam stage took 61.6 s instead of 41.5).

    >>> x = column_major(torch.tensor([[0, 1, 2], [3, 0, 1]]))
    >>> x.tolist(), x.stride()
    ([[0, 1, 2], [3, 0, 1]], (1, 2))
    """
    return x.T.contiguous().T


class FullBatch:
    """The whole training split, the same batch at every step, ``steps`` steps (None:
    without end; the stage's own limits stop it). ``norm`` and ``entropy`` default to
    the reads and the entropy of their bins (sort-seq, count pairs); a continuous
    measurement gives its own (sequences, and H[y])."""

    def __init__(
        self,
        x: torch.Tensor,
        obs: torch.Tensor,
        steps: int | None,
        norm: float | None = None,
        entropy: float | None = None,
    ):
        self.x, self.obs = column_major(x), column_major(obs)
        self.steps = steps
        self.norm = float(obs.sum()) if norm is None else float(norm)
        if entropy is None:
            entropy = entropy_bits(obs.sum(0).double().cpu().numpy())
        self.entropy_bits = entropy
        self.sample = x

    def __iter__(self) -> Iterator[Batch]:
        counter = itertools.count() if self.steps is None else range(self.steps)
        for _ in counter:
            yield Batch(self.x, self.obs, self.norm)


class ShuffledRows:
    """Minibatches of a training split held in memory: ``batch_size`` rows a step drawn
    without replacement, reshuffled every epoch (seeded), ``epochs`` passes; the rows
    left over after the last full batch of an epoch wait for the next shuffle. ``weight``
    gives each row's share of the likelihood's norm (its reads, or 1 for a score);
    ``entropy`` is the training entropy term of I_var (None: that of the reads' bins)."""

    def __init__(self, x, obs, *, batch_size: int, epochs: int, seed: int, weight, entropy):
        self.x, self.obs = x, obs
        self.batch_size = min(batch_size, len(x))
        self.steps_per_epoch = max(1, len(x) // self.batch_size)
        self.epochs = epochs
        self.steps = epochs * self.steps_per_epoch
        self.weights = weight(obs)
        self.norm = float(self.weights.sum())
        if entropy is None:  # reads: the entropy of their bins
            entropy = entropy_bits(obs.sum(0).double().cpu().numpy())
        self.entropy_bits = entropy
        self.sample = x[:SAMPLE_ROWS]
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[Batch]:
        n = len(self.x)
        for epoch in range(self.epochs):
            order = torch.randperm(n, generator=self.generator).to(self.x.device)
            for b in range(self.steps_per_epoch):
                rows = order[b * self.batch_size : (b + 1) * self.batch_size]
                norm = float(self.weights[rows].sum())
                x, obs = column_major(self.x[rows]), column_major(self.obs[rows])
                yield Batch(x, obs, norm, epoch=epoch + b / self.steps_per_epoch)


def training_bin_totals(store) -> np.ndarray:
    """Reads per bin over a store's training rows, summed a million rows at a time."""
    start, stop = store.ranges["training"]
    totals = np.zeros(store.n_bins)
    for a in range(start, stop, 1 << 20):
        totals += store.counts[a : min(a + (1 << 20), stop)].sum(0, dtype=np.int64)
    return totals


def blocks_of_epoch(n_rows: int, block_rows: int, blocks_per_batch: int, seed: int, epoch: int):
    """The epoch's batches as lists of ``(start, stop)`` row blocks; the same on every rank.

    Blocks of ``block_rows`` contiguous rows, shuffled by ``(seed, epoch)``; the blocks
    left over after the last full batch wait for a later epoch's shuffle.
    """
    starts = np.arange(0, n_rows, block_rows)
    rng = np.random.default_rng([seed, epoch])
    starts = starts[rng.permutation(len(starts))]
    for b in range(len(starts) // blocks_per_batch):
        chosen = sorted(starts[b * blocks_per_batch : (b + 1) * blocks_per_batch].tolist())
        yield [(s, min(s + block_rows, n_rows)) for s in chosen]


def read_blocks(store, offset: int, blocks, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``offset + a .. offset + b`` of every block of a store, as tensors."""
    x = np.concatenate([store.codes[offset + a : offset + b] for a, b in blocks])
    c = np.concatenate([store.counts[offset + a : offset + b] for a, b in blocks])
    return (
        column_major(torch.from_numpy(x.astype(np.int64)).to(device)),
        column_major(torch.from_numpy(c.astype(np.float32)).to(device)),
    )


class Minibatches:
    """Minibatches of shuffled row blocks from a store's training rows.

    ``batch_size`` rows a step (rounded to whole blocks of ``block_rows``, and to a
    multiple of the processes); ``epochs`` passes (None: enough for ``min_steps`` steps,
    at least 3, at most 200), cut at ``max_steps``. Each process reads only its share
    of every batch's blocks.
    """

    def __init__(
        self,
        store,
        *,
        batch_size: int,
        block_rows: int,
        epochs: int | None,
        max_steps: int | None,
        seed: int,
        comm: Comm,
        device,
        min_steps: int = 600,
    ):
        self.store, self.seed, self.comm, self.device = store, seed, comm, device
        self.start, stop = store.ranges["training"]
        self.n_rows = stop - self.start
        self.block_rows = block_rows
        n_blocks = math.ceil(self.n_rows / block_rows)
        per_batch = max(1, min(batch_size // block_rows, n_blocks))
        self.per_batch = max(comm.world, per_batch - per_batch % comm.world)
        if n_blocks < self.per_batch:
            raise BpmError(
                f"{self.n_rows} training rows make {n_blocks} blocks of {block_rows}; "
                f"{comm.world} processes need at least {self.per_batch}"
            )
        self.steps_per_epoch = n_blocks // self.per_batch
        if epochs is None:
            epochs = min(200, max(3, math.ceil(min_steps / self.steps_per_epoch)))
        self.epochs = epochs
        self.steps = epochs * self.steps_per_epoch
        if max_steps is not None:
            self.steps = min(self.steps, max_steps)
        totals = training_bin_totals(store)
        self.bin_totals = totals
        self.mean_reads = float(totals.sum()) / self.n_rows
        self.entropy_bits = entropy_bits(totals)
        rows = min(self.n_rows, SAMPLE_ROWS)
        self.sample_codes = np.asarray(store.codes[self.start : self.start + rows])
        self.sample_counts = np.asarray(store.counts[self.start : self.start + rows])
        self.sample = column_major(torch.from_numpy(self.sample_codes.astype(np.int64)))
        self.sample = self.sample.to(device)
        self.epoch_rows: list[int] = []  # training rows stepped on in each epoch
        self.epoch_seconds: list[float] = []  # wall time of each epoch, checks included

    def __iter__(self) -> Iterator[Batch]:
        step, seen = 0, 0
        for epoch in range(self.epochs):
            if step >= self.steps:
                return
            self.epoch_rows.append(0)
            self.epoch_seconds.append(0.0)
            started = time.perf_counter()
            try:
                for blocks in blocks_of_epoch(
                    self.n_rows, self.block_rows, self.per_batch, self.seed, epoch
                ):
                    if step >= self.steps:
                        return
                    step += 1
                    rows = sum(b - a for a, b in blocks)
                    seen += rows
                    self.epoch_rows[-1] += rows
                    mine = blocks[self.comm.rank :: self.comm.world]
                    x, c = read_blocks(self.store, self.start, mine, self.device)
                    norm = self.mean_reads * rows / self.comm.world
                    yield Batch(x, c, norm, epoch=epoch + (seen % self.n_rows) / self.n_rows)
            finally:
                self.epoch_seconds[-1] = time.perf_counter() - started


class StoreBatch:
    """A store's whole training split as the batch of every step (for L-BFGS on data too
    large to hold): each use reads this process's share of it in chunks, observations in
    ``dtype``; ``norm`` is every process's reads together."""

    def __init__(self, store, device, comm: Comm, dtype: torch.dtype = torch.float64):
        self.store, self.device, self.comm, self.dtype = store, device, comm, dtype
        totals = training_bin_totals(store)
        self.norm = float(totals.sum())
        self.entropy_bits = entropy_bits(totals)

    def parts(self):
        for x, c in store_chunks(self.store, "training", self.device, self.comm):
            yield x, c.to(self.dtype)

    def __iter__(self) -> Iterator[Batch]:
        while True:
            yield Batch(None, None, self.norm, parts=self.parts)


def tensor_chunks(x: torch.Tensor, obs: torch.Tensor):
    """A split held in memory as evaluation chunks of at most :data:`EVAL_CHUNK` rows
    (one chunk for most splits; GB1's 477,854 training sequences in eight, so that a
    float64 pass over them does not hold every intermediate at once). A split of one
    chunk (a validation split, checked every few steps) is laid out column after column
    once; larger ones stay views, each chunk copied as the module reads it, so that no
    second copy of a large split is held."""
    if len(x) <= EVAL_CHUNK:
        return [(column_major(x), column_major(obs))]
    return [(x[a : a + EVAL_CHUNK], obs[a : a + EVAL_CHUNK]) for a in range(0, len(x), EVAL_CHUNK)]


def _split_rows(store, split: str, limit: int | None) -> tuple[int, int]:
    """The store rows ``(start, stop)`` of a split's first ``limit`` rows (None: all)."""
    start, stop = store.ranges[split]
    return start, stop if limit is None else min(stop, start + limit)


def store_split(store, split: str, device, limit: int | None = None):
    """A store split's first ``limit`` rows (None: all) as one ``(codes, counts)`` pair of
    tensors, for a polish that holds them (:mod:`bpm.runtime.newton`)."""
    return read_blocks(store, 0, [_split_rows(store, split, limit)], device)


def store_chunks(store, split: str, device, comm: Comm, limit: int | None = None):
    """This process's share of a store split's evaluation chunks (its first ``limit`` rows)."""
    start, stop = _split_rows(store, split, limit)
    for k, a in enumerate(range(start, stop, EVAL_CHUNK)):
        if k % comm.world == comm.rank:
            yield read_blocks(store, 0, [(a, min(a + EVAL_CHUNK, stop))], device)
