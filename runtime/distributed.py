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

from .option_flags import add_arguments, from_arguments
from .options import FitOptions
from .sources import Comm


def _device(device: str) -> str:
    if device.startswith("cuda"):
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return device


def join(device: str = "cpu") -> Comm:
    """Join the process group from torchrun's environment; returns this process's place."""
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if device.startswith("cuda"):
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return Comm(dist.get_rank(), dist.get_world_size())


def encode_once(model, data, options: FitOptions, quiet: bool = True):
    """The encoded store of ``data`` for ``model``: encoded by this process if it is the
    first on its machine (or alone), opened by the others after a barrier."""
    from .contract import resolve_model
    from .store import Store, encode_file

    if isinstance(data, Store):
        return data
    cls, _, _ = resolve_model(model)
    data_options = {
        "alphabet": cls.alphabet,
        "length": cls.sequence_length,
        "seed": options.seed,
        **options.data_options,
    }
    together = dist.is_initialized()
    local = int(os.environ.get("LOCAL_RANK", 0)) if together else 0
    if local == 0:
        store = encode_file(data, cache_dir=options.cache_dir, quiet=quiet, **data_options)
    if together:
        dist.barrier()
    if local != 0:
        store = encode_file(data, cache_dir=options.cache_dir, quiet=True, **data_options)
    return store


def run(model, data, options: FitOptions, *, report=None, plots: bool = True):
    """The body of one process: join, open the store, fit its share; rank 0 writes the
    report to ``report`` (if given). Returns this process's FitResult."""
    from .paths import fit_in_process

    comm = join(options.device)
    try:
        store = encode_once(model, data, options, quiet=options.quiet or comm.rank != 0)
        mine = options.replace(
            device=_device(options.device), quiet=options.quiet or comm.rank != 0
        )
        result = fit_in_process(model, store, mine, path="stream", comm=comm)
        if comm.rank == 0:
            result.data_path = str(data)
            if report is not None:
                result.save(report, plots=plots)
        # Leave together: a rank that tears gloo down while rank 0 is still writing
        # can abort its peer ("terminate called without an active exception").
        dist.barrier()
        return result
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for the process group's rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawned(rank: int, world: int, port: int, args: tuple, report: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(world),
    )
    run(*args, report=report, plots=False)


def spawn_fit(model, data, options: FitOptions | dict | int | None = None, **kwargs):
    """Fit with ``options.processes`` local processes (gloo on 127.0.0.1, or NCCL with
    ``device="cuda"``); returns rank 0's fit as a :class:`~bpm.runtime.result.FitResult`.

    The store is encoded here first, so the processes only open it; rank 0 saves its
    fit to a temporary directory, read back here.
    """
    import torch.multiprocessing as mp

    from .load import load_fit

    if isinstance(options, int):  # spawn_fit(model, data, 2, ...), as before the options record
        options, kwargs = None, {**kwargs, "processes": options}
    options = FitOptions.build(options, **kwargs)
    if options.processes < 2:
        options = options.replace(processes=2)
    store = encode_once(model, data, options, quiet=options.quiet)
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "fit"
        args = (model, store, options.replace(mode="distributed"))
        mp.spawn(
            _spawned,
            args=(options.processes, free_port(), args, str(saved)),
            nprocs=options.processes,
        )
        result = load_fit(saved)
    result.data_path = str(data)
    return result


def main(argv: list[str] | None = None) -> int:
    """``torchrun ... -m bpm.runtime.distributed MODEL DATA [-o DIR] [options]``."""
    p = argparse.ArgumentParser(
        prog="python -m bpm.runtime.distributed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model")
    p.add_argument("data")
    p.add_argument("-o", "--output", dest="report", help="report directory (written by rank 0)")
    p.add_argument("--no-plots", dest="plots", action="store_false")
    add_arguments(p)
    a = p.parse_args(argv)
    from bpm.compiler.errors import BpmError

    try:
        options = from_arguments(a).replace(mode="distributed")
        result = run(a.model, a.data, options, report=a.report, plots=a.plots)
    except BpmError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", 0)) == 0 and a.report is None:
        sys.stdout.write(json.dumps(result.metrics, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
