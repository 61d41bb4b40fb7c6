"""The one options record of a fit: every knob once, with one default and one meaning.

``bpm.runtime.fit``, the ``bpm fit`` command, ``torchrun -m bpm.runtime.distributed``,
``profile`` and the streaming path all build a :class:`FitOptions`. An option that the
chosen execution path does not use is reported (``FitOptions.notes``), never dropped in
silence; a name that is no option is an error.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from bpm.compiler.errors import BpmError

from .option_values import parse_gates, parse_init

MODES = ("auto", "full", "stream", "distributed")
LINKS = ("flexible", "affine")
#: Where the L-BFGS polish stops: on the validation reads (an early-stopped estimate) or
#: at the training optimum (maximum likelihood; docs/fitting.md, "Training").
STOPS = ("validation", "training")
#: Options that only the full-batch path uses, and those only minibatches use.
FULL_ONLY = ("bootstrap",)
STREAM_ONLY = ("batch_size", "block_rows", "epochs", "val_rows", "cache_dir")


@dataclass
class FitOptions:
    """How to fit. Defaults are the ones ``bpm fit`` uses.

    Execution
        ``mode``: ``auto`` (full batch in memory, minibatches streamed from a
        memory-mapped store for files over ``BPM_STREAM_THRESHOLD_BYTES``, 100 MB),
        ``full``, ``stream`` or ``distributed`` (``processes`` local processes with
        DistributedDataParallel over the streamed store). ``device``: ``cpu`` or
        ``cuda``. ``threads``: CPU threads per process (None: torch's default).
        ``seed``: the fit's seed (same seed, same fit). ``quiet``: no progress.

    The model
        ``output``: the model output that is measured (default: ``t``, else the only
        one). ``init``: starting values in natural units, by ``.bpm`` name, over what the
        model file says. ``fix``: names held at their starting values. ``from_data``:
        start site matrices from each letter's mean bin (``spread`` kT a position,
        ``consensus_energy`` kT for the consensus sequence, by site name). ``pin``:
        hold each matrix's consensus letters (gauge-redundant with the offset) in the
        Adam stage. ``starts``: how many fits from different starting points
        (:mod:`bpm.runtime.multistart`: each scalar energy started on both sides of
        zero, run in parallel processes); the most likely is kept and every distinct
        optimum is listed. ``bootstrap``: that many refits on resamples of the training
        sequences (with replacement, reads kept with their sequence), warm-started from
        the fit, in parallel processes (:mod:`bpm.runtime.bootstrap`): bootstrap
        standard errors and 95% percentile intervals (0: none; full batch only).
        ``identifiability``: after the fit, 95% profile-likelihood intervals of each site
        energy's scale and each learned scalar energy, by refits in parallel processes
        (:mod:`bpm.runtime.identifiability`; full batch only; off by default until it is
        cheap: on the lac reads it costs about three fits).

    The measurement process
        ``link``: ``flexible`` (a learned monotone link and learned cutpoints) or
        ``affine`` (log brightness = a + b log(t + floor) + Gaussian noise: a reporter
        linear in transcription; ``b`` is 1 unless ``learn_slope``). ``gates``: the
        B - 1 inner bin boundaries of the sort in natural-log brightness, as the
        sorter recorded them (``affine`` only; they fix the cutpoints up to the one
        offset ``a``). ``hidden``: tanh units of the flexible link. ``transform``:
        ``log`` (the link reads ``log(t + floor)``), ``identity``, or ``auto`` (log when
        every starting ``t`` is positive).

    The optimizer
        Adam with a one-cycle schedule peaking at ``lr``, ``steps`` optimizer steps long
        (None: 200 full-batch steps; minibatches: ``epochs`` passes, by default enough
        for 600 steps, at least 3 and at most 200 epochs). The validation NLL is checked
        every ``eval_every`` steps (None: 10 full batch; minibatches 200, at most one
        epoch) and the fit stops after ``patience`` checks without improvement once
        the measurement is re-standardized (at ``restandardize_at`` of the schedule); the
        best state is kept. Then at most ``polish`` L-BFGS iterations in float64 on the
        whole training split (0: none; on a store it reads the rows in chunks).
        ``stop``: ``training`` (default: the polish runs to the training optimum, until
        L-BFGS's own tolerances or the training NLL stalls,
        :data:`~bpm.runtime.optimizers.STALL_NATS`; maximum likelihood) or ``validation``
        (it keeps its best validated state and stops after 3 checks without improvement:
        an early-stopped estimate).

    Minibatches (``stream``, ``distributed``)
        ``batch_size`` rows a step in blocks of ``block_rows`` contiguous rows;
        validation on the first ``val_rows`` validation rows; ``cache_dir`` for the
        encoded store (default: beside the data file).

    The data
        ``data_options``: columns and split, passed to
        :func:`bpm.runtime.data.read_dataset` (``sequence_column``, ``count_columns``,
        ``count_prefix``, ``split_column``, ``split_fractions``).
    """

    mode: str = "auto"
    processes: int = 1
    device: str = "cpu"
    threads: int | None = 1
    seed: int = 0
    quiet: bool = False
    output: str | None = None
    init: Mapping[str, float] = field(default_factory=dict)
    fix: tuple[str, ...] = ()
    from_data: bool = False
    spread: float = 0.5
    consensus_energy: Mapping[str, float] | None = None
    pin: bool = True
    starts: int = 1
    bootstrap: int = 0
    identifiability: bool = False
    link: str = "flexible"
    gates: tuple[float, ...] | None = None
    learn_slope: bool = False
    hidden: int = 2
    transform: str = "auto"
    steps: int | None = None
    lr: float = 0.07
    eval_every: int | None = None
    patience: int = 6
    restandardize_at: float = 0.25
    polish: int = 1000
    stop: str = "training"
    batch_size: int = 8192
    block_rows: int = 512
    epochs: int | None = None
    val_rows: int = 100_000
    cache_dir: str | None = None
    data_options: Mapping = field(default_factory=dict)
    #: options set by the caller (not defaults): what ``notes`` checks
    given: frozenset = field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self):
        if self.mode not in MODES:
            raise BpmError(f"mode must be one of {list(MODES)}, not {self.mode!r}")
        if self.starts < 1:
            raise BpmError(f"starts must be at least 1, not {self.starts}")
        if self.stop not in STOPS:
            raise BpmError(f"stop must be one of {list(STOPS)}, not {self.stop!r}")
        if self.bootstrap < 0:
            raise BpmError(f"bootstrap must be 0 or more refits, not {self.bootstrap}")
        if self.processes < 1:
            raise BpmError(f"processes must be at least 1, not {self.processes}")
        if not re.fullmatch(r"cpu|cuda(:\d+)?|mps", str(self.device)):
            raise BpmError(f"device must be cpu, cuda, cuda:N or mps, not {self.device!r}")
        if self.seed < 0:
            raise BpmError(f"seed must be 0 or more, not {self.seed}")
        if self.threads is not None and self.threads < 1:
            raise BpmError(
                f"threads must be at least 1 (or None: torch's default), not {self.threads}"
            )
        if self.processes > 1 and self.mode in ("auto", "stream"):
            self.mode = "distributed"
        if self.mode == "distributed" and self.processes < 2 and "processes" in self.given:
            raise BpmError("mode 'distributed' needs processes >= 2")
        if self.link not in LINKS:
            raise BpmError(f"link must be one of {list(LINKS)}, not {self.link!r}")
        if self.gates is not None:
            self.gates = tuple(float(g) for g in self.gates)
            if self.link != "affine":
                raise BpmError("gates fix the cutpoints of the affine link: add link='affine' "
                               "(--link affine)")  # fmt: skip
            if any(b <= a for a, b in zip(self.gates, self.gates[1:], strict=False)):
                raise BpmError(f"gates must increase, got {list(self.gates)}")
        if self.transform not in ("auto", "log", "identity"):
            raise BpmError(f"transform must be auto, log or identity, not {self.transform!r}")
        for name in ("steps", "eval_every", "epochs"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BpmError(f"{name} must be at least 1, not {value}")
        for name in ("patience", "batch_size", "block_rows", "val_rows", "hidden"):
            if getattr(self, name) < (0 if name == "hidden" else 1):
                raise BpmError(f"{name} must be positive, not {getattr(self, name)}")
        if self.polish < 0:
            raise BpmError(f"polish must be 0 (none) or more L-BFGS iterations, not {self.polish}")
        if not self.lr > 0:
            raise BpmError(f"lr must be a positive learning rate, not {self.lr}")
        if not 0 <= self.restandardize_at < 1:
            raise BpmError(f"restandardize_at must be in [0, 1), not {self.restandardize_at}")
        self.fix = tuple(self.fix or ())
        self.init = dict(self.init or {})
        self.data_options = dict(self.data_options or {})

    @classmethod
    def build(cls, options: FitOptions | Mapping | None = None, **kwargs) -> FitOptions:
        """A record from another record or a mapping, updated by keyword arguments
        (the keyword arguments of ``fit()``); unknown names are an error."""
        base = {}
        given = set()
        if isinstance(options, FitOptions):
            base = {f.name: getattr(options, f.name) for f in fields(cls) if f.name != "given"}
            given |= set(options.given)
        elif options is not None:
            base = dict(options)
        names = {f.name for f in fields(cls)} - {"given"}
        new = {**{k: v for k, v in base.items() if k in names}, **kwargs}
        unknown = sorted((set(base) | set(kwargs)) - names)
        if unknown:
            raise BpmError(f"unknown fit option(s) {unknown}; the options are {sorted(names)}")
        given |= set(kwargs) | (set(base) if not isinstance(options, FitOptions) else set())
        return cls(**new, given=frozenset(given))

    def replace(self, **changes) -> FitOptions:
        """A copy with ``changes`` applied (and counted as given)."""
        return dataclasses.replace(self, **changes, given=self.given | set(changes))

    def notes(self, path: str) -> list[str]:
        """What the caller set that ``path`` (``full`` or ``stream``) does not use."""
        unused = STREAM_ONLY if path == "full" else FULL_ONLY
        label = "full-batch" if path == "full" else "minibatch"
        return [
            f"option {name}={getattr(self, name)!r} does not apply to a {label} fit; ignored"
            for name in unused
            if name in self.given and getattr(self, name) != _default(name)
        ]


def _default(name: str):
    f = FitOptions.__dataclass_fields__[name]
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


# ---------------------------------------------------------------- the command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The fit options as command-line flags (``bpm fit`` and ``bpm.runtime.distributed``).

    Every flag defaults to None (not given), so the record's defaults stay the only ones.
    """
    add = parser.add_argument
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
    add("--steps", type=int, help="Adam steps (default 200 full batch; minibatch: by epochs)")
    add(
        "--stop",
        choices=STOPS,
        help="training (default): polish to the training optimum (maximum likelihood); "
        "validation: stop when the validation NLL stops improving (early-stopped)",
    )
    add("--lr", type=float, help="peak learning rate (default 0.07)")
    add("--patience", type=int, help="stop after this many checks without improvement (6)")
    add("--eval-every", type=int, help="steps between validation checks (default 10 / 200)")
    add("--polish", type=int, help="most L-BFGS iterations after Adam (default 1000; 0: none)")
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
        help="count columns in bin order, dimmest bin first, comma-separated "
        "(default ct_0, ct_1, ...: ct_0 the dimmest)",
    )
    add("--count-prefix", help="prefix of the count columns (default ct_)")
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
