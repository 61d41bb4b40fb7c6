"""The record a fit returns: the fitted module, its measurement process, how it went."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from bpm.compiler.errors import BpmError

from . import contract


@dataclass
class FitResult:
    """A fitted module, its measurement process, and how the fit went.

    ``module``: the generated module with the fitted parameters; ``measurement``: the
    fitted measurement process; ``output``: the model output that was measured.
    ``metrics``: ``{split: {"nll": bits per read, "I_var_bits": H[bin] - NLL}}`` for
    ``training``, ``validation`` and ``test``. ``history``: one dict per validation
    check (``step``, ``train_nll``, ``val_nll`` in bits per read, their I_var, ``stage``).
    ``steps``: optimizer iterations run, all stages together. ``stages``: each
    optimizer stage's name, iterations and why it stopped. ``convergence``:
    ``converged``, the training NLL's final ``gradient_norm`` (bits per read) and why
    the last stage ``stopped``. ``wall_seconds``: the fit's
    time. ``seed``: its seed. ``data_summary``: what reading the data found and set
    aside. ``sizes``: sequences per split. ``source``: the generated module's text.
    ``notes``: what the fit said about options it could not use. ``dataset``: the data
    in memory (None for a streamed or reloaded fit). ``profile``: rows of a profile
    likelihood. ``optima``: with several starts, every distinct optimum found (best first).
    ``uncertainty``: the analysis of :meth:`analyze_uncertainty`. ``bootstrap``: the
    refits of ``fit(..., bootstrap=N)`` (a :class:`~bpm.runtime.bootstrap.Bootstrap`).
    ``identifiability``: 95% profile-likelihood intervals of the energy scales and
    scalar energies (:func:`bpm.runtime.identifiability.identifiability`), or None.
    ``provenance``: how the fit was made, for summary.json (set by
    :func:`bpm.runtime.fit.fit`; see :func:`bpm.runtime.fit.provenance`): ``options``
    (every option, :meth:`~bpm.runtime.options.FitOptions.record`), ``options_given``,
    ``execution_path``, ``data_sha256``, ``bpm_version``, ``torch_version``,
    ``python_version``; empty for a result made some other way. ``phase_seconds``: wall
    seconds by phase of the fit, in order (``compile``, ``setup``, ``read``, ``encode``, ``start``,
    ``adam``, ``polish``, ``evaluating``, then any ``bootstrap``, ``identifiability``,
    ``uncertainty``); empty where none were taken.

    ``module`` and ``measurement`` are put in eval mode, the module's inference mode:
    ``float(result.module(x))`` needs no ``detach()``. Call ``.train()`` on them to train
    further; the runtime's own refits and Hessians do so themselves.
    """

    module: nn.Module
    measurement: nn.Module
    output: str
    metrics: dict
    history: list[dict]
    steps: int
    wall_seconds: float
    seed: int
    data_summary: dict
    sizes: dict
    source: str = ""
    model_path: str = ""
    data_path: str = ""
    stages: list[dict] = field(default_factory=list)
    convergence: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dataset: object | None = field(default=None, repr=False)
    profile: list = field(default_factory=list)
    optima: list = field(default_factory=list)
    uncertainty: object | None = field(default=None, repr=False)
    identifiability: dict | None = field(default=None, repr=False)
    bootstrap: object | None = field(default=None, repr=False)
    provenance: dict = field(default_factory=dict, repr=False)
    phase_seconds: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.module.eval()
        self.measurement.eval()

    @property
    def kT_kcal_per_mol(self) -> float:
        return contract.kT_kcal_per_mol(self.module)

    def t(self, sequences) -> torch.Tensor:
        """The measured model output for sequences (strings or codes), shape ``[N]``."""
        x = contract.as_codes(self.module, sequences)
        with torch.no_grad():
            return contract.select_output(self.module(x), self.output)

    def predict(self, sequences) -> pd.DataFrame:
        """``t``, every state's probability and the most likely bin for each sequence."""
        from .predict import predictions

        return predictions(self, sequences)

    def params(
        self, gauge: str | None = "zero-mean", wild_type: str | None = None
    ) -> dict[str, torch.Tensor]:
        """The module's parameters in natural units (kT for energies), by ``.bpm`` name,
        site tables and offsets in ``gauge`` as summary.json and params/ give them
        (``"zero-mean"``, or ``"wild-type"`` against ``wild_type``, by default the library's
        consensus); in the module's own layout, so ``set_params`` takes them and every
        energy is unchanged. ``gauge=None``: the values as stored."""
        stored = self.module.get_params()
        if gauge is None:
            return stored
        from .tables import gauge_name, gauged_terms, storage_order, wild_type_codes

        codes = self.dataset.codes if self.dataset is not None else None
        wild = gauge_name(gauge) == "wild-type"
        wt = wild_type_codes(self.module, wild_type, codes) if wild else None
        out = dict(stored)
        for name, terms in gauged_terms(self.module, gauge, wt).items():
            tables = storage_order(self.module, name, terms.matrix, terms.pairs)
            if f"{name}.offset" in stored:
                tables[f"{name}.offset"] = float(terms.offset)
            for key, value in tables.items():
                out[key] = torch.as_tensor(value, dtype=stored[key].dtype)
        return out

    def analyze_uncertainty(self, refit: int = 0):
        """Standard errors and unidentified parameter combinations at this fit's values.

        Uses the training reads (the Hessian of their total NLL, measurement process
        profiled out); standard errors only where the fit is at an optimum (converged per
        :attr:`convergence`, or a gradient below ``train.GRADIENT_TOL``, and no saddle),
        otherwise ``nan`` with ``status`` ``"not at an optimum"``. ``refit`` > 0 first
        refits copies with up to that many float64 L-BFGS iterations on the training
        reads: the errors are then those of the refitted optimum (the fit is unchanged).
        The result is kept on ``self.uncertainty`` and reported by :meth:`save`. See
        :func:`bpm.runtime.uncertainty.analyze`.
        """
        from .uncertainty import analyze

        if self.dataset is None:
            raise BpmError("this fit keeps no data to analyze (a streamed or reloaded fit)")
        self.uncertainty = analyze(
            self.module,
            self.measurement,
            self.dataset.subset("training"),
            output=self.output,
            converged=(self.convergence or {}).get("converged"),
            refit=refit,
            dispersion=self.provenance.get("options", {}).get("dispersion", 1.0),
        )
        return self.uncertainty

    def save(
        self,
        directory: str | Path,
        plots: bool = True,
        gauge: str = "zero-mean",
        wild_type: str | None = None,
        figure_formats: tuple[str, ...] = ("png",),
        progress: bool = False,
    ) -> Path:
        """Write summary.json, params/, model.py, model.pt and plots/ into ``directory``;
        site offsets and tables in ``gauge`` (``zero-mean``, or ``wild-type`` with
        ``wild_type`` a sequence, default the library consensus); each figure a PNG, and
        a PDF beside it too when ``figure_formats`` holds ``"pdf"``; ``progress``: name
        each phase of the writing on stderr."""
        from .report import write_report

        return write_report(self, Path(directory), plots=plots, gauge=gauge, wild_type=wild_type,
                            figure_formats=figure_formats, progress=progress)  # fmt: skip
