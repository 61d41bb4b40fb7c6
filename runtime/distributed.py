"""Data-parallel fitting on several processes or machines (torch DistributedDataParallel).

One machine, N processes (the ``bpm fit --distributed N`` flag runs :func:`spawn_fit`)::

    torchrun --nproc-per-node=2 -m bpm.runtime.distributed models/lac.bpm data.csv.gz -o out

Several machines (run the same command on each; the data path must be readable on every
machine, for example on a shared file system, or copied to the same path)::

    torchrun --nnodes=2 --nproc-per-node=8 --rdzv-backend=c10d \\
        --rdzv-endpoint=HOST:29500 --rdzv-id=lac1 \\
        -m bpm.runtime.distributed models/lac.bpm data.csv.gz -o out --device cuda

The backend is NCCL when ``--device cuda`` (each process takes the GPU numbered by its
``LOCAL_RANK``), gloo on CPU. Every process opens the same memory-mapped store (the
first process on each machine encodes it, the others wait) and reads only its share of
every batch's row blocks; gradients are averaged, and the loss is normalized by the
whole batch, so the steps equal a single process's on the same global batch (up to the
order of floating-point sums). Rank 0 writes the report.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist

from .stream import Comm, encode_file, fit_stream


def _device(device: str) -> str:
    if device.startswith("cuda"):
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return device


def init(device: str = "cpu") -> Comm:
    """Join the process group from torchrun's environment; returns this process's place."""
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if device.startswith("cuda"):
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return Comm(dist.get_rank(), dist.get_world_size())


def prepare(data, options: dict, cache_dir=None, quiet: bool = True):
    """Encode the store once per machine: local rank 0 first, then the rest open it."""
    local = int(os.environ.get("LOCAL_RANK", 0))
    if local == 0:
        store = encode_file(data, cache_dir=cache_dir, quiet=quiet, **options)
    dist.barrier()
    if local != 0:
        store = encode_file(data, cache_dir=cache_dir, quiet=True, **options)
    return store


def run(
    model,
    data,
    *,
    report=None,
    device="cpu",
    cache_dir=None,
    quiet=False,
    plots=True,
    data_options=None,
    result_json=None,
    **fit_options,
):
    """The body of one process: join, encode, fit; rank 0 saves the report (if ``report``)
    and a JSON of the parameters and metrics (if ``result_json``)."""
    from .fit import resolve_model

    comm = init(device)
    try:
        cls, _, _ = resolve_model(model)
        options = dict(data_options or {})
        options.setdefault("alphabet", cls.alphabet)
        options.setdefault("length", cls.sequence_length)
        options.setdefault("seed", fit_options.get("seed", 0))
        store = prepare(data, options, cache_dir, quiet or comm.rank != 0)
        result = fit_stream(
            model,
            store,
            device=_device(device),
            comm=comm,
            quiet=quiet or comm.rank != 0,
            **fit_options,
        )
        if comm.rank == 0:
            result.data_path = str(data)
            if report is not None:
                result.save(report, plots=plots)
            if result_json is not None:
                Path(result_json).write_text(json.dumps(_brief(result)))
        # Leave together: a rank that tears gloo down while rank 0 is still writing
        # can abort its peer ("terminate called without an active exception").
        dist.barrier()
        return result
    finally:
        dist.destroy_process_group()


def _brief(result) -> dict:
    return {
        "metrics": result.metrics,
        "params": {k: v.tolist() for k, v in result.params().items()},
        "history": result.history,
        "steps": result.epochs,
        "wall_seconds": result.wall_seconds,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawned(rank: int, world: int, port: int, args: tuple, kwargs: dict) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(world),
    )
    run(*args, **kwargs)


def spawn_fit(model, data, nprocs: int = 2, **kwargs) -> dict:
    """Fit with ``nprocs`` local processes (gloo on 127.0.0.1, or NCCL with
    ``device="cuda"``); returns rank 0's parameters, metrics and history as a dict.

    The store is encoded here first, so the processes only open it.
    """
    import torch.multiprocessing as mp

    from .fit import resolve_model

    cls, _, _ = resolve_model(model)
    options = dict(kwargs.get("data_options") or {})
    options.setdefault("alphabet", cls.alphabet)
    options.setdefault("length", cls.sequence_length)
    options.setdefault("seed", kwargs.get("seed", 0))
    encode_file(
        data, cache_dir=kwargs.get("cache_dir"), quiet=kwargs.get("quiet", False), **options
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        kwargs = dict(kwargs, result_json=str(out))
        mp.spawn(_spawned, args=(nprocs, free_port(), (model, data), kwargs), nprocs=nprocs)
        return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    """``torchrun ... -m bpm.runtime.distributed MODEL DATA [-o DIR] [options]``."""
    p = argparse.ArgumentParser(
        prog="python -m bpm.runtime.distributed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model")
    p.add_argument("data")
    p.add_argument("-o", "--output", help="report directory (written by rank 0)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, default=8192, help="rows per step, all ranks")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--threads", type=int, default=1, help="CPU threads per process")
    p.add_argument("--cache-dir", help="where to keep the encoded store")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--no-plots", dest="plots", action="store_false")
    a = p.parse_args(argv)
    from bpm.compiler.errors import BpmError

    try:
        result = run(
            a.model,
            a.data,
            report=a.output,
            device=a.device,
            cache_dir=a.cache_dir,
            quiet=a.quiet,
            plots=a.plots,
            seed=a.seed,
            epochs=a.epochs,
            batch_size=a.batch_size,
            lr=a.lr,
            threads=a.threads,
        )
    except BpmError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", 0)) == 0 and a.output is None:
        sys.stdout.write(json.dumps(result.metrics, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
