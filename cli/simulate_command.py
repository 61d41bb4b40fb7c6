"""``bpm simulate``: write a simulated data set (sort-seq bins, continuous scores or a
count pair: ``--measurement``) and its ground truth.

``register(subparsers)`` adds the subcommand to the ``bpm`` parser; ``run_simulate``
does the work and is what tests call.
"""

from __future__ import annotations

import argparse
import sys
import time

from bpm.compiler.errors import BpmError


def run_simulate(
    model: str,
    output: str,
    *,
    n: int = 50_000,
    wild_type: str | None = None,
    mutation_rate: float = 0.1,
    bins: int = 10,
    reads: int | None = None,
    noise: float = 0.5,
    params: str | None = None,
    seed: int = 0,
    floor: float = 0.0,
    background: float = 0.0,
    measurement_from: str | None = None,
    measurement: str = "sortseq",
    dy: bool = False,
) -> int:
    """Simulate ``n`` cells; write ``output``, ``<stem>.truth.json`` and ``<stem>.truth/``."""
    start = time.perf_counter()
    from bpm.runtime.table_output import table_format

    from .fit_checks import check_model_file, named

    check_model_file(model)
    if seed < 0:
        raise named(BpmError(f"seed must be 0 or more, not {seed}"), "--seed")
    table_format(output)  # an unknown suffix is refused before anything is simulated
    from bpm.runtime.simulate import simulate, write  # torch and pandas: only when run

    table, truth = simulate(
        model,
        n=n,
        wild_type=wild_type,
        mutation_rate=mutation_rate,
        params=params,
        seed=seed,
        bins=bins,
        reads=reads,
        noise=noise,
        floor=floor,
        background=background,
        measurement_from=measurement_from,
        measurement=measurement,
        dy=dy,
    )
    paths = write(table, truth, output)
    seconds = time.perf_counter() - start
    if measurement == "continuous":
        what = f"{len(table)} unique variants scored (y" + (", dy)" if dy else ")")
    elif measurement == "counts":
        what = f"{len(table)} unique variants, {truth.meta['reads']} reads (input_ct, selected_ct)"
    else:
        what = (
            f"{len(table)} unique sequences with reads, {truth.meta['reads']} reads in "
            f"{truth.meta['bins']} bins"
        )
    print(f"simulated {n} cells of '{truth.model}': {what} ({seconds:.1f} s)", file=sys.stderr)
    print(f"wrote {paths['data']}, {paths['truth']}, {paths['matrices']}/", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``simulate`` to the ``bpm`` command's subparsers."""
    p = subparsers.add_parser(
        "simulate",
        help="simulate a sort-seq, score or count-pair experiment with known parameters",
        description=(
            "Draw a mutagenized library around a wild type, compute each variant's output "
            "under ground-truth parameters, sort noisy cells into bins and sample reads. "
            "Writes the count table and, next to it, STEM.truth.json (scalars) and "
            "STEM.truth/<energy>_kT.csv (matrices, zero-mean gauge)."
        ),
    )
    p.add_argument("model", metavar="MODEL", help="a .bpm file")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="data file; the suffix names the format: .csv, .tsv (either .gz), .parquet",
    )
    p.add_argument("--n", type=int, default=50_000, help="cells (library variants) sorted")
    p.add_argument(
        "--wild-type",
        metavar="SEQ|FILE",
        help="wild-type sequence, a file holding it, or a count table (its consensus); "
        "default: random",
    )
    p.add_argument(
        "--mutation-rate", type=float, default=0.1, help="per-position substitution rate"
    )
    p.add_argument(
        "--measurement",
        choices=("sortseq", "continuous", "counts"),
        default="sortseq",
        help="what is measured: sort bins ct_0.. (default); a score y = log2((t + floor) / "
        "(t_wt + floor)) + noise per unique variant; or input_ct, selected_ct reads of a "
        "selection whose survival rises with t",
    )
    p.add_argument("--bins", type=int, default=10, help="sort bins")
    p.add_argument(
        "--reads",
        type=int,
        default=None,
        help="total reads (default: --n; counts: 20 x --n, half in each library)",
    )
    p.add_argument(
        "--noise",
        type=float,
        default=0.5,
        help="sd of log expression per cell; continuous: of y (log2); counts: of the "
        "selection log-odds per variant",
    )
    p.add_argument(
        "--dy",
        action="store_true",
        help="continuous: per-variant noise sd varies (log-sd 0.5) and is written as dy",
    )
    p.add_argument(
        "--params",
        metavar="DIR_OR_JSON",
        help="ground truth: a fit directory, a JSON file or a .truth.json; the rest is random",
    )
    p.add_argument(
        "--floor",
        type=float,
        default=0.0,
        help="brightness floor f: readout log(t + f) + noise (default 0, units of t)",
    )
    p.add_argument(
        "--background",
        type=float,
        default=0.0,
        help="fraction of cells sorted regardless of their reporter (default 0)",
    )
    p.add_argument(
        "--measurement-from",
        metavar="DIR",
        help="draw bins from a bpm fit -o directory's own measurement process "
        "(its parameters are the default truth)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(
        handler=lambda a: run_simulate(
            a.model,
            a.output,
            n=a.n,
            wild_type=a.wild_type,
            mutation_rate=a.mutation_rate,
            bins=a.bins,
            reads=a.reads,
            noise=a.noise,
            params=a.params,
            seed=a.seed,
            floor=a.floor,
            background=a.background,
            measurement_from=a.measurement_from,
            measurement=a.measurement,
            dy=a.dy,
        )
    )
    return p
