"""``bpm fit`` and ``bpm predict``.

``register(subparsers)`` adds both subcommands to the ``bpm`` parser; ``run_fit`` and
``run_predict`` do the work, are what tests call, and raise ``BpmError`` on user errors.
"""

from __future__ import annotations

import argparse
import json
import sys


def _split_list(text: str | None) -> list[str] | None:
    return None if text is None else [c.strip() for c in text.split(",") if c.strip()]


def _init(pairs: list[str] | None) -> dict[str, float]:
    from bpm.compiler.errors import BpmError

    out = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise BpmError(f"--init expects NAME=NUMBER, not '{pair}'")
    return out


def _import_plotting_meanwhile() -> None:
    """Import matplotlib (pyplot, Agg) in a background thread while the fit runs.

    About half a second of the report's time; torch releases the GIL inside its
    kernels, so the import overlaps the fit instead of following it.
    """
    import threading

    def work():
        try:
            from .plots import _pyplot

            _pyplot()
        except Exception:  # the report imports them again and says what failed
            pass

    threading.Thread(target=work, name="bpm-import-plotting", daemon=True).start()


def run_fit(
    model: str,
    data: str,
    output: str | None,
    *,
    seed: int = 0,
    device: str = "cpu",
    steps: int | None = None,
    lr: float | None = None,
    quiet: bool = False,
    plots: bool = True,
    model_output: str | None = None,
    init: dict[str, float] | None = None,
    fix: list[str] | None = None,
    sequence_column: str = "x",
    counts: str | None = None,
    count_prefix: str = "ct_",
    split_column: str | None = "set",
    stream: bool = False,
    distributed: int = 0,
    batch_size: int | None = None,
    epochs: int | None = None,
    cache_dir: str | None = None,
    polish: int | None = None,
    patience: int | None = None,
    uncertainty: bool = False,
) -> int:
    """Fit ``model`` to ``data``; write the report to ``output`` (or the summary to stdout)."""
    from .fit import fit
    from .report import summary

    options = {
        "sequence_column": sequence_column,
        "count_columns": _split_list(counts),
        "count_prefix": count_prefix,
        "split_column": split_column,
    }
    tuning = {
        k: v
        for k, v in (("steps", steps), ("lr", lr), ("polish", polish), ("patience", patience))
        if v is not None
    }
    common = dict(seed=seed, device=device, quiet=quiet, output=model_output, init=init,
                  fix=tuple(fix or ()), data_options=options)  # fmt: skip
    # --- scale (issue 7): --stream, --distributed N (runtime/stream.py, distributed.py)
    scale = {k: v for k, v in (("batch_size", batch_size), ("epochs", epochs)) if v is not None}
    if steps is not None:
        scale["max_steps"] = steps
    if lr is not None:
        scale["lr"] = lr
    if patience is not None:
        scale["patience"] = patience
    if distributed > 1:
        from .distributed import spawn_fit

        brief = spawn_fit(model, data, distributed, report=output, plots=plots,
                          cache_dir=cache_dir, **common, **scale)  # fmt: skip
        if output is None:
            sys.stdout.write(json.dumps(brief["metrics"], indent=2) + "\n")
        return 0
    if stream or scale.keys() & {"batch_size", "epochs"} or cache_dir is not None:
        from .stream import fit_stream

        result = fit_stream(model, data, cache_dir=cache_dir, **common, **scale)
    else:  # --- end scale
        if output is not None and plots:
            _import_plotting_meanwhile()
        result = fit(model, data, **common, **tuning)
    test = result.metrics["test"]["I_var_bits"]
    if uncertainty:
        found = result.analyze_uncertainty()
        for message in [*found.unidentified, *found.notes]:
            print(f"note: {message}", file=sys.stderr)
    if output is None:
        sys.stdout.write(json.dumps(summary(result), indent=2, default=str) + "\n")
    else:
        result.save(output, plots=plots)
        if not quiet:
            print(
                f"wrote {output}/ (summary.json, params/, model.py, model.pt"
                f"{', plots/' if plots else ''})",
                file=sys.stderr,
            )
    if not quiet:
        print(
            f"fit {result.epochs} steps in {result.wall_seconds:.1f} s; "
            f"test I_var = {test:.3f} bits",
            file=sys.stderr,
        )
    return 0


def run_predict(fit_dir: str, sequences: str, output: str | None) -> int:
    """Predict ``t`` and state probabilities; CSV to ``output`` or stdout."""
    from bpm.compiler.errors import BpmError

    from .report import predict, read_sequences

    frame = predict(fit_dir, read_sequences(sequences))
    if output is None or output == "-":
        frame.to_csv(sys.stdout, index=False)
    else:
        try:
            frame.to_csv(output, index=False)
        except OSError as error:
            raise BpmError(f"cannot write {output}: {error.strerror or error}") from None
        print(f"wrote {output}", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fit`` and ``predict`` to the ``bpm`` command's subparsers."""
    p = subparsers.add_parser(
        "fit",
        help="fit a model to sort-seq read counts",
        description="Maximum-likelihood fit of a .bpm model and an ordinal measurement "
        "process to sort-seq counts (CSV/TSV, gzipped or not, or Parquet).",
    )
    p.add_argument("model", metavar="MODEL", help="a .bpm file")
    p.add_argument("data", metavar="DATA", help="count table: sequence, ct_0..ct_B, set")
    p.add_argument("-o", "--output", metavar="DIR", help="write the report here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--steps", type=int, help="most full-batch Adam steps (default 200)")
    p.add_argument(
        "--polish", type=int, help="most L-BFGS iterations after Adam (default 200; 0: none)"
    )
    p.add_argument(
        "--patience",
        type=int,
        help="Adam stops after this many validation checks (every 10 steps) without "
        "improvement (default 6)",
    )
    p.add_argument("--lr", type=float, help="peak learning rate (default 0.07)")
    p.add_argument(
        "--uncertainty",
        action="store_true",
        help="standard errors (Hessian of the likelihood) and unidentified combinations",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-plots", dest="plots", action="store_false")
    p.add_argument("--model-output", help="the model output to fit (default: t)")
    p.add_argument(
        "--init",
        action="append",
        metavar="NAME=VALUE",
        help="initial value of a parameter in natural units (repeatable)",
    )
    p.add_argument(
        "--fix",
        action="append",
        metavar="NAME",
        help="hold a parameter at its starting value (repeatable; with --init: a profile)",
    )
    p.add_argument(
        "--stream",
        action="store_true",
        help="minibatches from a memory-mapped encoded store (automatic for big files)",
    )
    p.add_argument(
        "--distributed",
        type=int,
        default=0,
        metavar="N",
        help="N local processes with DistributedDataParallel (implies --stream)",
    )
    p.add_argument("--batch-size", type=int, help="rows per minibatch step (default 8192)")
    p.add_argument("--epochs", type=int, help="passes over the training rows (streaming)")
    p.add_argument("--cache-dir", help="where to keep the encoded store (default: beside DATA)")
    p.add_argument("--sequence-column", default="x")
    p.add_argument("--counts", help="count columns in bin order, comma-separated")
    p.add_argument("--count-prefix", default="ct_")
    p.add_argument(
        "--split-column",
        default="set",
        help="column with training/validation/test (absent: random 60/20/20)",
    )
    p.set_defaults(
        handler=lambda a: run_fit(
            a.model,
            a.data,
            a.output,
            seed=a.seed,
            device=a.device,
            steps=a.steps,
            polish=a.polish,
            patience=a.patience,
            uncertainty=a.uncertainty,
            lr=a.lr,
            quiet=a.quiet,
            plots=a.plots,
            model_output=a.model_output,
            init=_init(a.init),
            fix=a.fix,
            sequence_column=a.sequence_column,
            counts=a.counts,
            count_prefix=a.count_prefix,
            split_column=a.split_column,
            stream=a.stream,
            distributed=a.distributed,
            batch_size=a.batch_size,
            epochs=a.epochs,
            cache_dir=a.cache_dir,
        )
    )

    p = subparsers.add_parser(
        "predict",
        help="predict t and state probabilities with a fitted model",
        description="SEQUENCES is a file (one sequence a line, or a table with an x column) "
        "or sequences separated by commas or spaces.",
    )
    p.add_argument("fit_dir", metavar="DIR", help="a directory written by bpm fit -o")
    p.add_argument("sequences", metavar="SEQUENCES_OR_FILE")
    p.add_argument("-o", "--output", help="write a CSV here instead of stdout")
    p.set_defaults(handler=lambda a: run_predict(a.fit_dir, a.sequences, a.output))
