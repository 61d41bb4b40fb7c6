"""The fit options as command-line flags, shared by ``bpm fit``, ``bpm compare`` and
``bpm.runtime.distributed``: every flag defaults to None (not given), so
:class:`~bpm.runtime.options.FitOptions`' defaults stay the only ones.
"""

from __future__ import annotations

import argparse

from .option_values import parse_gates, parse_init
from .options import FINISHES, KINDS, LINKS, NOISES, PAIRS, STOPS, FitOptions


def add_arguments(parser: argparse.ArgumentParser, leave_out=()) -> None:
    """The fit options as command-line flags (``bpm fit``, ``bpm compare`` and
    ``bpm.runtime.distributed``), less the flags named in ``leave_out``.

    Every flag defaults to None (not given), so the record's defaults stay the only ones.
    """

    def add(flag, **kwargs):
        if flag not in leave_out:
            parser.add_argument(flag, **kwargs)

    add("--seed", type=int, help="the fit's seed (default 0)")
    add("--device", help="cpu (default) or cuda")
    add("--threads", type=int, help="CPU threads per process (default 1)")
    add("--starts", type=int, help="fits from several starts, the best kept (default 1)")
    add("--bootstrap", type=int, metavar="N", help="N bootstrap refits: errors, intervals")
    add(
        "--identifiability",
        choices=("on", "off"),
        help="profile-likelihood intervals of energy scales and scalar energies (default off)",
    )
    add(
        "--dispersion",
        type=float,
        metavar="PHI",
        help="reads' information overstated PHI times (cells with several reads): "
        "widens profile intervals and standard errors (default 1)",
    )
    add("--steps", type=int, help="Adam steps (default 200 full batch; minibatch: by epochs)")
    add(
        "--stop",
        choices=STOPS,
        help="training (default): polish to the training optimum (maximum likelihood); "
        "validation: stop when the validation NLL stops improving (early-stopped)",
    )
    add(
        "--finish",
        choices=FINISHES,
        help="how the polish reaches the training optimum: newton (exact Hessian, then "
        "L-BFGS), lbfgs, or auto (default: newton for --link affine where the model has an "
        "energy table and at most 2000 parameters, else lbfgs)",
    )
    add("--lr", type=float, help="peak learning rate (default 0.07)")
    add("--patience", type=int, help="stop after this many checks without improvement (6)")
    add("--eval-every", type=int, help="steps between validation checks (default 10 / 200)")
    add(
        "--polish",
        type=int,
        help="most L-BFGS iterations after Adam, and Newton iterations up to 100 (default "
        "1000; 0: none)",
    )
    add("--hidden", type=int, help="tanh units in the flexible measurement link (default 2)")
    add(
        "--link", choices=LINKS, help="flexible (default) or affine: log brightness linear in log t"
    )
    add(
        "--gates",
        metavar="G1,G2,...|FILE",
        help="the sort's inner bin boundaries in natural-log brightness (with --link affine)",
    )
    add(
        "--learn-slope",
        action="store_true",
        default=None,
        help="learn the affine link's slope b instead of holding it at 1",
    )
    add("--model-output", dest="output", help="the model output to fit (default: t)")
    add(
        "--init",
        action="append",
        metavar="NAME=VALUE",
        help="starting value of a parameter in natural units (repeatable)",
    )
    add(
        "--fix",
        action="append",
        metavar="NAME",
        help="hold a parameter at its starting value (repeatable; with --init: a profile)",
    )
    add(
        "--stream",
        action="store_true",
        default=None,
        help="minibatches from a memory-mapped encoded store (automatic for big files)",
    )
    add(
        "--distributed",
        type=int,
        metavar="N",
        dest="processes",
        help="N local processes with DistributedDataParallel (implies --stream)",
    )
    add("--batch-size", type=int, help="rows per minibatch step (default 8192)")
    add("--epochs", type=int, help="passes over the training rows (minibatches)")
    add("--cache-dir", help="where to keep the encoded store (default: beside DATA)")
    add("--quiet", action="store_true", default=None, help="no progress bar")
    add("--sequence-column", help="the sequence column (default x)")
    add(
        "--counts",
        help="count columns, comma-separated: sort bins in order, dimmest first (default "
        "ct_0, ct_1, ...: ct_0 the dimmest), or two columns REFERENCE,SELECTED of a count pair",
    )
    add("--count-prefix", help="prefix of the count columns (default ct_)")
    add(
        "--measurement",
        choices=("auto", *KINDS),
        help="what the table measures (default auto: ct_* columns sortseq, a y column "
        "continuous, --counts with two columns a count pair)",
    )
    add("--y-column", help="the score column of a continuous measurement (default y)")
    add("--dy-column", help="its standard errors (default dy, when the table has it)")
    add(
        "--pair",
        choices=("auto", *PAIRS),
        help="a count pair's columns: separate read sets (default: input,selected; dna,rna) "
        "or nested (the second counts a part of the first's reads: total,included)",
    )
    add("--noise", choices=NOISES, help="noise of a continuous score (default skewt)")
    add(
        "--no-carve-validation",
        dest="carve_validation",
        action="store_false",
        default=None,
        help="refuse a table with training and test rows but no validation rows "
        "(default: a seeded 25%% of training becomes validation, said in summary.json)",
    )
    add(
        "--split-column",
        help="column with training/validation/test (default set; absent: random 60/20/20)",
    )


def from_arguments(args: argparse.Namespace) -> FitOptions:
    """The :class:`FitOptions` of parsed :func:`add_arguments` flags (only those given)."""
    values = {}
    for name in (
        "seed",
        "device",
        "threads",
        "steps",
        "lr",
        "patience",
        "eval_every",
        "polish",
        "hidden",
        "output",
        "processes",
        "batch_size",
        "epochs",
        "cache_dir",
        "quiet",
        "link",
        "learn_slope",
        "starts",
        "bootstrap",
        "stop",
        "finish",
        "noise",
        "dispersion",
    ):
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    if getattr(args, "identifiability", None) is not None:
        values["identifiability"] = args.identifiability == "on"
    if getattr(args, "stream", None):
        values.setdefault("mode", "stream")
    if values.get("processes") in (0, 1):
        values.pop("processes")
    if getattr(args, "gates", None):
        values["gates"] = parse_gates(args.gates)
    if getattr(args, "init", None):
        values["init"] = parse_init(args.init)
    if getattr(args, "fix", None):
        values["fix"] = tuple(args.fix)
    data = {}
    for flag, key in (
        ("sequence_column", "sequence_column"),
        ("count_prefix", "count_prefix"),
        ("split_column", "split_column"),
        ("measurement", "measurement"),
        ("y_column", "y_column"),
        ("dy_column", "dy_column"),
        ("pair", "pair"),
    ):
        if getattr(args, flag, None) is not None:
            data[key] = getattr(args, flag)
    if getattr(args, "carve_validation", None) is False:
        data["carve_validation"] = False
    if getattr(args, "counts", None) is not None:
        data["count_columns"] = [c.strip() for c in args.counts.split(",") if c.strip()]
    if data:
        values["data_options"] = data
    return FitOptions.build(**values)


#: Options set by a ``bpm fit`` flag of the same name (``--eval-every`` for ``eval_every``).
SAME_NAME = (
    "seed", "device", "threads", "steps", "lr", "patience", "eval_every", "polish", "hidden",
    "batch_size", "epochs", "cache_dir", "link", "starts", "bootstrap", "stop", "noise",
    "dispersion", "finish",
)  # fmt: skip
#: ``data_options`` keys set by a flag of the same name (``--y-column`` for ``y_column``).
DATA_FLAGS = (
    "sequence_column", "count_prefix", "split_column", "measurement", "y_column", "dy_column",
    "pair",
)  # fmt: skip


def command_flags(options: dict) -> tuple[list[str], list[str]]:
    """The ``bpm fit`` flags that give a fit ``options`` (a
    :meth:`~bpm.runtime.options.FitOptions.record`), every value that is not the default;
    and the names of such options that no flag sets (only ``fit()`` in Python does).

    >>> command_flags(FitOptions.build(steps=50, fix=("G_I",), spread=1.0).record())
    (['--fix=G_I', '--steps=50'], ['spread'])
    """
    defaults = FitOptions().record()
    flags, python_only = [], []
    for name, value in options.items():
        if name == "quiet" or name not in defaults or value == defaults[name]:
            continue
        if name in SAME_NAME and value is not None:
            flags.append(f"--{name.replace('_', '-')}={value}")
        elif name == "output":
            flags.append(f"--model-output={value}")
        elif name == "processes":
            flags.append(f"--distributed={value}")
        elif name == "mode" and value in ("stream", "distributed"):
            flags += ["--stream"] if value == "stream" else []
        elif name in ("learn_slope", "identifiability") and value is True:
            flags.append("--learn-slope" if name == "learn_slope" else "--identifiability=on")
        elif name == "gates" and value:
            flags.append("--gates=" + ",".join(repr(float(g)) for g in value))
        elif name == "init":
            flags += [f"--init={k}={float(v)!r}" for k, v in value.items()]
        elif name == "fix":
            flags += [f"--fix={k}" for k in value]
        elif name == "data_options":
            python_only += data_flags(value, flags)
        else:
            python_only.append(name)
    return flags, python_only


def data_flags(data: dict, flags: list[str]) -> list[str]:
    """Append to ``flags`` those that give ``data`` (``data_options``); the keys no flag sets."""
    rest = []
    for key, value in data.items():
        if key in DATA_FLAGS:
            flags.append(f"--{key.replace('_', '-')}={value}")
        elif key == "count_columns":
            flags.append("--counts=" + ",".join(value))
        elif key == "carve_validation" and value is False:
            flags.append("--no-carve-validation")
        else:
            rest.append(f"data_options.{key}")
    return rest
