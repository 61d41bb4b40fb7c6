"""Streaming fit at 50,000, 500,000 and 5,000,000 simulated lac sequences; module throughput.

For each size N: simulate a lac sort-seq experiment with N cells and 3N reads (about
0.95 N unique sequences; cached as ``<tmp>/bpm_scale/lac_N.csv.gz``), encode it into the
memory-mapped store (``bpm.runtime.stream.encode_file``), then fit with minibatch Adam
(8192 rows a step) for a fixed number of epochs. Encoding and fitting each run in a
fresh process, so each peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``; memory
mapped pages that were touched count) is that stage's own. Time per sequence is the
median epoch's seconds over the training rows it stepped on; "incl. val" adds the
validation passes that fall inside the epoch (a fixed-size subset, so relatively
larger at small N). Then forward+backward throughput of the generated lac and
open_complex modules at 8192 rows.

Run: ``python benchmarks/scale.py`` (``--sizes 50000 500000`` for a shorter run).
OMP_WAIT_POLICY=PASSIVE is set (as in lac_throughput.py) because on a shared 2-core
machine spinning OpenMP threads that lose their core make every step wait a tick.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("BPM_SCALE_CACHE", Path(tempfile.gettempdir()) / "bpm_scale"))
EPOCHS = {50_000: 20, 500_000: 5, 5_000_000: 3}


def dataset(n: int) -> Path:
    """The simulated table for ``n`` cells, generated once (``bpm simulate``)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"lac_{n}.csv.gz"
    done = CACHE / f"lac_{n}.done"
    if not done.exists():
        cmd = [sys.executable, "-m", "bpm.cli", "simulate", str(ROOT / "models/lac.bpm")]
        cmd += ["-o", str(path), "--n", str(n), "--reads", str(3 * n), "--seed", "0"]
        subprocess.run(cmd, check=True)
        done.write_text("ok\n")
    return path


def _stage(code: str) -> dict:
    """Run ``code`` (which sets ``out``, a dict) in a fresh Python; add its peak RSS."""
    wrapper = (
        "import json, resource, sys\n"
        + code
        + "\nout['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print('RESULT' + json.dumps(out))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", wrapper], capture_output=True, text=True, cwd=ROOT, check=False
    )
    if run.returncode != 0:
        raise RuntimeError(run.stderr[-3000:])
    line = [x for x in run.stdout.splitlines() if x.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT") :])


def encode_stage(path: Path, n: int) -> dict:
    store = CACHE / f"store_{n}"
    return _stage(
        "import shutil, time\n"
        "from bpm.runtime.stream import encode_file\n"
        f"shutil.rmtree({str(store)!r}, ignore_errors=True)\n"
        "t = time.perf_counter()\n"
        f"s = encode_file({str(path)!r}, length=75, cache_dir={str(store)!r})\n"
        "out = {'seconds': time.perf_counter() - t, 'rows': len(s), 'sizes': s.sizes(),\n"
        "       'bytes': s.codes.nbytes + s.counts.nbytes}\n"
    )


def fit_stage(path: Path, n: int, epochs: int, threads: int) -> dict:
    store = CACHE / f"store_{n}"
    return _stage(
        "import statistics, time\n"
        "from bpm.runtime.stream import fit_stream\n"
        "t = time.perf_counter()\n"
        f"r = fit_stream('models/lac.bpm', {str(path)!r}, cache_dir={str(store)!r},\n"
        f"               epochs={epochs}, patience=10**6, polish=0, quiet=True,\n"
        f"               threads={threads})\n"
        "tr = r.data_summary['training']\n"
        "out = {'seconds': time.perf_counter() - t, 'training': tr, 'metrics': r.metrics}\n"
    )


def interleaved(sizes, threads: int, rounds: int = 7, steps: int = 20) -> dict:
    """Microseconds per training sequence of the streaming step (read the batch's blocks
    from the memory map, forward, backward, Adam), the sizes taking turns ``steps`` steps
    at a time for ``rounds`` rounds in one process, so that the machine's load falls on
    every size alike; the median round per size (the first round is a warm-up)."""
    code = f"""
import time, statistics, numpy as np, torch
from bpm.compiler.loader import load
from bpm.runtime.measurement import OrdinalMeasurement
from bpm.runtime.sources import blocks_of_epoch, read_blocks
from bpm.runtime.store import encode_file
from bpm.runtime.train import Joint
from pathlib import Path
torch.set_num_threads({threads})
torch.manual_seed(0)
cache = Path({str(CACHE)!r})
stores = {{n: encode_file(cache / f"lac_{{n}}.csv.gz", length=75, cache_dir=cache / f"store_{{n}}")
          for n in {list(sizes)!r}}}
def endless(store):
    epoch = 0
    while True:
        yield from blocks_of_epoch(store.sizes()["training"], 512, 16, 0, epoch)
        epoch += 1
joint = Joint(load(Path("models/lac.bpm"))(), OrdinalMeasurement(10), "t")
opt = torch.optim.Adam(joint.parameters(), lr=1e-3)
feeds = {{n: endless(s) for n, s in stores.items()}}
times = {{n: [] for n in stores}}
for r in range({rounds}):
    for n, store in stores.items():
        rows = 0
        started = time.perf_counter()
        for _ in range({steps}):
            blocks = next(feeds[n])
            x, c = read_blocks(store, 0, blocks, "cpu")
            opt.zero_grad()
            loss = -joint(x, c).sum() / c.sum()
            loss.backward()
            opt.step()
            rows += len(x)
        times[n].append(1e6 * (time.perf_counter() - started) / rows)
out = {{str(n): statistics.median(t[1:]) for n, t in times.items()}}
"""
    return {int(k): v for k, v in _stage(code).items() if k != "peak_rss_mb"}


def throughput(threads: int, rows: int = 8192, repeats: int = 20) -> dict[str, float]:
    """Forward+backward rows per second of the generated modules (median of rounds)."""
    import torch

    from bpm.compiler.loader import load

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    modules = {name: load(ROOT / f"models/{name}.bpm")() for name in ("lac", "open_complex")}
    x = torch.randint(0, 4, (rows, 75))
    times = {name: [] for name in modules}
    for _ in range(repeats + 2):
        for name, module in modules.items():  # take turns, so load slows both alike
            module.zero_grad()
            started = time.perf_counter()
            out = module(x)
            out = out if isinstance(out, torch.Tensor) else next(iter(out.values()))
            out.sum().backward()
            times[name].append(time.perf_counter() - started)
    return {name: rows / statistics.median(t[2:]) for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=list(EPOCHS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="also write the figures here")
    a = p.parse_args(argv)
    print(f"load average at start: {os.getloadavg()}", file=sys.stderr)
    results = {}
    for n in a.sizes:
        path = dataset(n)
        enc = encode_stage(path, n)
        fit = fit_stage(path, n, EPOCHS.get(n, 3), a.threads)
        tr = fit["training"]
        per_epoch = statistics.median(tr["epoch_seconds"])
        train_only = statistics.median(
            (s - v) / rows
            for s, v, rows in zip(
                tr["epoch_seconds"], tr["eval_seconds"], tr["epoch_rows"], strict=True
            )
        )
        incl_val = statistics.median(
            s / rows for s, rows in zip(tr["epoch_seconds"], tr["epoch_rows"], strict=True)
        )
        results[n] = {
            "rows": enc["rows"],
            "n_train": enc["sizes"]["training"],
            "store_mb": enc["bytes"] / 2**20,
            "encode_s": enc["seconds"],
            "encode_peak_mb": enc["peak_rss_mb"],
            "epochs": len(tr["epoch_seconds"]),
            "epoch_s": per_epoch,
            "us_per_seq": 1e6 * train_only,
            "us_per_seq_incl_val": 1e6 * incl_val,
            "fit_peak_mb": fit["peak_rss_mb"],
            "val_I_var_bits": fit["metrics"]["validation"]["I_var_bits"],
        }
        print(f"{n}: {results[n]}", file=sys.stderr)
    print(f"load average at end: {os.getloadavg()}", file=sys.stderr)
    print(
        "| cells N | unique rows | training rows | store MB | encode s | encode peak RSS MB "
        "| epochs | s / epoch | µs / seq (train) | µs / seq (incl. val) | fit peak RSS MB "
        "| val I_var bits |"
    )
    print("|" + "---|" * 12)
    for n, r in results.items():
        print(
            f"| {n:,} | {r['rows']:,} | {r['n_train']:,} | {r['store_mb']:.0f} | "
            f"{r['encode_s']:.1f} | {r['encode_peak_mb']:.0f} | {r['epochs']} | "
            f"{r['epoch_s']:.2f} | {r['us_per_seq']:.2f} | {r['us_per_seq_incl_val']:.2f} | "
            f"{r['fit_peak_mb']:.0f} | {r['val_I_var_bits']:.3f} |"
        )
    if len(results) > 1:
        small, large = min(results), max(results)
        ratio = results[large]["us_per_seq"] / results[small]["us_per_seq"]
        print(f"\ntime per sequence (whole fits above), {large:,} / {small:,}: {ratio:.2f}x")
        turns = interleaved(sorted(results), a.threads)
        print("\ntraining step, sizes taking turns in one process (µs / sequence):")
        for n, us in turns.items():
            print(f"- {n:,}: {us:.2f}")
        ratio = turns[large] / turns[small]
        print(f"time per sequence, {large:,} / {small:,}: {ratio:.2f}x (target <= 1.2x)")
        results["interleaved_us_per_seq"] = turns
    rates = throughput(a.threads)
    print(f"\nforward+backward, 8192 rows, {a.threads} threads:")
    for name, rate in rates.items():
        print(f"- {name}: {rate:,.0f} rows/s")
    if a.json:
        Path(a.json).write_text(json.dumps({"fits": results, "throughput": rates}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
