"""The one options record of a fit: every knob once, with one default and one meaning.

``bpm.runtime.fit``, the ``bpm fit`` command, ``torchrun -m bpm.runtime.distributed``,
``profile`` and the streaming path all build a :class:`FitOptions`. An option that the
chosen execution path does not use is reported (``FitOptions.notes``), never dropped in
silence; a name that is no option is an error.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from bpm.compiler.errors import BpmError

MODES = ("auto", "full", "stream", "distributed")
LINKS = ("flexible", "affine")
#: Measurement kinds (:mod:`bpm.runtime.observations`) and the two readings of a count pair.
KINDS = ("sortseq", "continuous", "counts")
PAIRS = ("separate", "nested")
#: Noise models of the continuous measurement (:mod:`bpm.runtime.measurement_continuous`).
NOISES = ("skewt", "gaussian", "cauchy")
#: Where the L-BFGS polish stops: on the validation reads (an early-stopped estimate) or
#: at the training optimum (maximum likelihood; docs/fitting.md, "Training").
STOPS = ("validation", "training")
#: How the polish runs to the training optimum: L-BFGS, Newton (the exact Hessian) then
#: L-BFGS, or auto: Newton for the affine link where the model allows
#: (:func:`bpm.runtime.newton.uses_newton`).
FINISHES = ("auto", "newton", "lbfgs")
#: Options that only the full-batch path uses, and those only minibatches use.
FULL_ONLY = ("bootstrap",)
STREAM_ONLY = ("block_rows", "val_rows", "cache_dir")


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
        cheap: on the lac reads it doubles the fit's wall time). ``dispersion``: how many
        times the likelihood overstates the information in the reads, 1 (the default)
        when every read comes from a cell of its own; when cells carry several reads
        (PCR duplicates, a sort sequenced deeper than it has cells), the sum over cells
        of k^2 / the sum of k, k a cell's reads (``bpm simulate`` records it as
        ``read_dispersion``). Profile intervals then end where 2 dNLL = 3.84 x
        ``dispersion``, and Hessian standard errors are multiplied by its square root
        (docs/fitting.md, "Duplicated reads").

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
        best state is kept. Then the polish in float64 on the whole training split
        (``polish``: at most that many L-BFGS iterations, or Newton iterations up to
        :data:`~bpm.runtime.newton.ITERATIONS`; 0: none; on a store it reads the rows in
        chunks). ``stop``: ``training`` (default: the polish runs to the training
        optimum, maximum likelihood) or ``validation`` (L-BFGS keeps its best validated
        state and stops after 3 checks without improvement: an early-stopped estimate).
        ``finish``, how a polish to the training optimum runs: ``lbfgs`` (until L-BFGS's
        own tolerances or the NLL stalls, :data:`~bpm.runtime.optimizers.STALL_NATS`),
        ``newton`` (first Newton steps with the exact Hessian through the energy table,
        saddle-free, until the NLL stalls, :data:`~bpm.runtime.newton.NEWTON_STALL_NATS`;
        then L-BFGS from there) or ``auto`` (default: newton for the affine link where
        :func:`~bpm.runtime.newton.newton_applies`, else lbfgs).

    Minibatches (``stream``, ``distributed``, and full batch for training splits of
    100,000 rows or more, whose Adam stage steps through them in memory)
        ``batch_size`` rows a step (streamed: in blocks of ``block_rows`` contiguous rows;
        in memory 4,096 unless given); ``epochs`` passes (in memory 60 by default);
        validation on the first ``val_rows`` validation rows; ``cache_dir`` for the
        encoded store (default: beside the data file).

    Continuous measurements
        ``noise``: the noise of a continuous score around its prediction, ``skewt``
        (default), ``gaussian`` or ``cauchy`` (:mod:`bpm.runtime.measurement_continuous`).

    The data
        ``data_options``: the measurement kind, columns and split, passed to
        :func:`bpm.runtime.observations.read_observations` (``measurement``: ``auto``,
        ``sortseq``, ``continuous`` or ``counts``; ``sequence_column``,
        ``count_columns``, ``count_prefix``, ``y_column``, ``dy_column``, ``pair``,
        ``split_column``, ``split_fractions``).
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
    dispersion: float = 1.0
    link: str = "flexible"
    gates: tuple[float, ...] | None = None
    learn_slope: bool = False
    hidden: int = 2
    noise: str = "skewt"
    transform: str = "auto"
    steps: int | None = None
    lr: float = 0.07
    eval_every: int | None = None
    patience: int = 6
    restandardize_at: float = 0.25
    polish: int = 1000
    stop: str = "training"
    finish: str = "auto"
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
        if self.finish not in FINISHES:
            raise BpmError(f"finish must be one of {list(FINISHES)}, not {self.finish!r}")
        if self.finish == "newton" and self.stop != "training":
            raise BpmError("finish 'newton' runs to the training optimum; it needs stop 'training'")
        if self.bootstrap < 0:
            raise BpmError(f"bootstrap must be 0 or more refits, not {self.bootstrap}")
        if not (isinstance(self.dispersion, int | float) and self.dispersion >= 1):
            raise BpmError(
                f"dispersion must be a number of at least 1 (1: each read its own cell), "
                f"not {self.dispersion!r}"
            )
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
        if self.noise not in NOISES:
            raise BpmError(f"noise must be one of {list(NOISES)}, not {self.noise!r}")
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

    def record(self) -> dict:
        """Every option by name (``given`` aside) as plain JSON values: what summary.json
        keeps under ``options``, and what :meth:`build` takes back.

        >>> FitOptions.build(steps=20, fix=("G_I",)).record()["fix"]
        ['G_I']
        """
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "given"}

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


def _plain(value):
    """``value`` with tuples as lists and mappings as dicts, all the way down."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
