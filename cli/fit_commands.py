"""``bpm fit`` and ``bpm predict``: fit a model to read counts, predict with a saved fit.

The fit flags are :func:`bpm.runtime.option_flags.add_arguments`' (every option once,
shared with ``bpm compare`` and ``torchrun -m bpm.runtime.distributed``) and the flags of
what a fit directory holds are :func:`add_report_arguments`' (shared with ``bpm
compare``); this module adds only what belongs to the command: the model, the data, ``-o``.
``run_fit`` and ``run_predict`` do the work and are what tests call.
"""

from __future__ import annotations

import argparse
import sys
import threading

from bpm.compiler.errors import BpmDataError, BpmError

from .fit_checks import check_model, named, option_flag, options_from_arguments

EXIT_OK = 0


def import_plotting_meanwhile() -> None:
    """Import matplotlib (pyplot, Agg) in a background thread while the fit runs.

    About half a second of the report's time; torch releases the GIL inside its
    kernels, so the import overlaps the fit instead of following it.
    """

    def work():
        try:
            from bpm.runtime.plots import pyplot

            pyplot()
        except Exception:  # the report imports it again and says what failed
            pass

    threading.Thread(target=work, name="bpm-import-plotting", daemon=True).start()


def run_fit(
    model: str,
    data: str,
    output: str | None,
    options=None,
    *,
    plots: bool = True,
    uncertainty: bool = False,
    gauge: str = "zero-mean",
    wild_type: str | None = None,
    figure_formats: tuple[str, ...] = ("png",),
) -> int:
    """Fit ``model`` to ``data`` with ``options`` (a :class:`~bpm.runtime.options.FitOptions`,
    a dict or None); write the report to ``output``, or summary.json's contents to stdout,
    site energies in ``gauge`` (``zero-mean`` or ``wild-type``, against ``wild_type``),
    figures as PNGs and, when ``figure_formats`` holds ``"pdf"``, PDFs beside them."""
    from bpm.runtime.fit import fit
    from bpm.runtime.options import FitOptions
    from bpm.runtime.progress import phase, timed
    from bpm.runtime.report import summary, summary_text

    options = FitOptions.build(options)
    if output is not None and plots:
        import_plotting_meanwhile()
    try:
        result = fit(model, data, options)
    except BpmError as error:  # name the option, or the data file, an error is about
        if error.source is None:
            flag = option_flag(error.diagnostics[0].message)
            if flag != "bpm fit" or isinstance(error, BpmDataError):
                named(error, data if flag == "bpm fit" else flag)
        raise
    except (ValueError, UnicodeDecodeError) as error:  # a table pandas cannot parse
        from pandas.errors import EmptyDataError, ParserError

        if not isinstance(error, EmptyDataError | ParserError | UnicodeDecodeError):
            raise
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise named(BpmDataError(f"cannot read the table: {first}"), data) from None
    if options.quiet:  # otherwise the fit printed them as it started
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
    if uncertainty:
        if result.dataset is None:
            print("note: --uncertainty needs the data in memory (a full-batch fit); "
                  "no standard errors for this fit", file=sys.stderr)  # fmt: skip
        else:
            phase(not options.quiet, "uncertainty",
                  "standard errors from the Hessian of the likelihood")  # fmt: skip
            with timed(result.phase_seconds, "uncertainty"):
                found = result.analyze_uncertainty()
            for message in [*found.unidentified, *found.notes]:
                print(f"note: {message}", file=sys.stderr)
    if output is None:
        sys.stdout.write(summary_text(summary(result, gauge=gauge, wild_type=wild_type)))
        print("note: results not written (summary.json above only; params/, model.pt and "
              "plots/ need -o DIR, e.g. -o results/fit)", file=sys.stderr)  # fmt: skip
    else:
        result.save(output, plots=plots, gauge=gauge, wild_type=wild_type,
                    figure_formats=figure_formats, progress=not options.quiet)  # fmt: skip
        if not options.quiet:
            from pathlib import Path

            source = ", model.bpm" if (Path(output) / "model.bpm").exists() else ""
            drawn = ", plots/" if plots else ""
            wrote = f"summary.json, params/, model.py{source}, model.pt{drawn}, report.html"
            print(f"wrote {output}/ ({wrote})", file=sys.stderr)
    if not options.quiet:
        test = result.metrics["test"]
        shown = f"test I_var = {test['I_var_bits']:.3f} bits"
        if "I_pred_bits" in test:
            shown += f", I_pred = {test['I_pred_bits']:.3f} bits"
        if "R2" in test:
            shown += f", R2 = {test['R2']:.3f}"
        print(f"fit {result.steps} steps in {result.wall_seconds:.1f} s; {shown}",
              file=sys.stderr)  # fmt: skip
    return EXIT_OK


def run_predict(
    fit_dir: str,
    sequences: str,
    output: str | None,
    *,
    model: str | None = None,
    trust: bool = False,
) -> int:
    """Predict the output and state probabilities; a CSV to ``output`` or stdout.
    ``model``: the .bpm file of a fit saved before its source was recorded; ``trust``:
    run DIR/model.py as it is (only for a directory you wrote yourself)."""
    from pathlib import Path

    from bpm.runtime.load import predict
    from bpm.runtime.predict import read_sequences

    if not sequences.strip() or Path(sequences).is_dir():
        what = "is a directory" if sequences.strip() else "is empty"
        raise named(BpmError(f"SEQUENCES {what}: give a file or sequences separated by commas"),
                    sequences or "bpm predict")  # fmt: skip
    given = {"model": model} if model is not None else {}
    frame = predict(
        fit_dir, read_sequences(sequences), **given, **({"trust": True} if trust else {})
    )
    if output is None or output == "-":
        frame.to_csv(sys.stdout, index=False)
        return EXIT_OK
    try:
        frame.to_csv(output, index=False)
    except OSError as error:
        raise BpmError(f"cannot write {output}: {error.strerror or error}") from None
    print(f"wrote {output}", file=sys.stderr)
    return EXIT_OK


def run_report(fit_dir: str, output: str | None) -> int:
    """Write the report.html of the fit directory ``fit_dir`` again (or to ``output``)."""
    from pathlib import Path

    from bpm.runtime.report_html import write_html

    if not Path(fit_dir).is_dir():
        raise named(BpmError("is not a directory: give one written by bpm fit -o"), fit_dir)
    written = write_html(fit_dir, output)
    print(f"wrote {written}", file=sys.stderr)
    return EXIT_OK


def fit_from_arguments(args: argparse.Namespace) -> int:
    """``bpm fit``'s parsed flags to :func:`run_fit`."""
    model = check_model(args.model, args.output)
    report = report_from_arguments(args)
    options = options_from_arguments(args, [model])
    return run_fit(args.model, args.data, args.report, options, **report)


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    """What a fit directory holds, the flags ``bpm fit`` and ``bpm compare`` share:
    ``--no-plots``, ``--figure-format``, ``--uncertainty``, ``--gauge``, ``--wild-type``
    (read back by :func:`report_from_arguments`)."""
    p.add_argument("--no-plots", dest="plots", action="store_false", help="no plots/ in DIR")
    p.add_argument(
        "--figure-format",
        metavar="FORMATS",
        default="png",
        help="png (default) or png,pdf: also write each figure as a PDF beside its PNG",
    )
    p.add_argument(
        "--uncertainty",
        action="store_true",
        help="standard errors (Hessian of the likelihood) and unidentified combinations",
    )
    p.add_argument(
        "--gauge",
        choices=("zero-mean", "wild-type"),
        default="zero-mean",
        help="how site tables and offsets are reported: every position averaging zero "
        "(default), or the wild type's letters at zero and the offset its energy",
    )
    p.add_argument(
        "--wild-type",
        metavar="SEQUENCE",
        help="the wild type of --gauge wild-type (default: the library's consensus)",
    )


def report_from_arguments(args: argparse.Namespace) -> dict:
    """The keywords of :func:`run_fit` (and ``run_compare``) that
    :func:`add_report_arguments`' flags give."""
    return {"plots": args.plots, "uncertainty": args.uncertainty, "gauge": args.gauge,
            "wild_type": args.wild_type,
            "figure_formats": figure_format_flag(args.figure_format)}  # fmt: skip


def figure_format_flag(text: str) -> tuple[str, ...]:
    """``--figure-format``'s value as formats, a bad one an error naming the flag."""
    from bpm.runtime.plots_measured import parse_formats

    try:
        return parse_formats(text)
    except BpmError as error:
        raise named(error, "--figure-format") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fit`` and ``predict`` to the ``bpm`` command's subparsers."""
    from bpm.runtime.option_flags import add_arguments

    p = subparsers.add_parser(
        "fit",
        help="fit a model to sort-seq reads, scores or count pairs",
        description="Maximum-likelihood fit of a .bpm model and a measurement process to "
        "a table (CSV/TSV, gzipped or not, or Parquet): sort-seq bin counts (ct_0..ct_B), "
        "a score y (with dy), or a count pair named with --counts; see --measurement.",
    )
    p.add_argument("model", metavar="MODEL", help="a .bpm file")
    p.add_argument(
        "data", metavar="DATA", help="table: sequence, ct_0..ct_B or y or a count pair, set"
    )
    p.add_argument("-o", "--output", dest="report", metavar="DIR", help="write the report here")
    add_report_arguments(p)
    add_arguments(p)
    p.set_defaults(handler=fit_from_arguments)

    p = subparsers.add_parser(
        "predict",
        help="predict t and state probabilities with a fitted model",
        description="SEQUENCES is a file (one sequence a line, or a table with an x column) "
        "or sequences separated by commas or spaces.",
    )
    p.add_argument("fit_dir", metavar="DIR", help="a directory written by bpm fit -o")
    p.add_argument("sequences", metavar="SEQUENCES_OR_FILE")
    p.add_argument("-o", "--output", help="write a CSV here instead of stdout")
    p.add_argument(
        "--model",
        metavar="FILE.bpm",
        help="the model file, for a fit saved before it recorded its model's source",
    )
    p.add_argument(
        "--trust",
        action="store_true",
        help="run DIR/model.py as saved: only for a directory you wrote yourself",
    )
    p.set_defaults(
        handler=lambda a: run_predict(
            a.fit_dir, a.sequences, a.output, model=a.model, trust=a.trust
        )
    )

    p = subparsers.add_parser(
        "report",
        help="write a fit directory's report.html again",
        description="Write DIR/report.html from the files of a fit directory: one page "
        "with the model, its closed form, every figure and table and how the fit was made.",
    )
    p.add_argument("fit_dir", metavar="DIR", help="a directory written by bpm fit -o")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of DIR/report.html")
    p.set_defaults(handler=lambda a: run_report(a.fit_dir, a.output))
