"""Each measurement kind in a fit: its process, what its likelihood is counted per, the
entropy term of its I_var, its predictive information and its predicted measurement.

``sortseq`` (reads in ordered bins: :mod:`~bpm.runtime.measurement`,
:mod:`~bpm.runtime.measurement_affine`), ``counts`` (a count pair, two-bin with
beta-binomial overdispersion: :mod:`~bpm.runtime.measurement_counts`) and ``continuous``
(a score ``y``: :mod:`~bpm.runtime.measurement_continuous`). The metrics follow
MAVE-NN's definitions (Tareen et al. 2022) for each kind:

- ``I_var_bits = H[y] - NLL``: for reads, ``H`` is the entropy of the split's reads over
  the bins and the NLL is per read; for a score, ``H`` is the k-nearest-neighbour
  differential entropy of the split's ``y`` (at most 10,000 values, fuzzed by 1% of their
  spread, k = 7) and the NLL is the density's, per sequence.
- ``I_pred_bits``: the k-nearest-neighbour mutual information (k = 5) between the model's
  prediction (the link's latent value, monotone in ``t``) and the measurement: the score
  (KSG), or each read's bin (the mixed estimator).
- ``R2`` (continuous): the squared Pearson correlation of ``E[y | t]`` with ``y``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bpm.compiler.errors import BpmError

from . import information
from .measurement_continuous import ContinuousMeasurement
from .measurement_counts import CountPairMeasurement
from .start import link_standardization, start_measurement


def kind_of(measurement: nn.Module) -> str:
    """``sortseq``, ``counts`` or ``continuous``."""
    return getattr(measurement, "kind", "sortseq") if measurement is not None else "sortseq"


def start_for(kind: str, t0: torch.Tensor, obs: torch.Tensor, options) -> nn.Module:
    """The measurement process of ``kind``, started on the starting outputs ``t0`` and
    the training observations ``obs`` (``options``: a FitOptions)."""
    if kind == "sortseq":
        return start_measurement(
            t0,
            obs.sum(0),
            hidden=options.hidden,
            transform=options.transform,
            link=options.link,
            gates=options.gates,
            learn_slope=options.learn_slope,
        )
    if options.link != "flexible" or options.gates is not None:
        raise BpmError(
            f"--link affine and --gates describe a sort; a {kind} measurement has a "
            "flexible link (leave them out)"
        )
    link = link_standardization(t0, options.transform)
    if kind == "counts":
        measurement = CountPairMeasurement(hidden=options.hidden, **link).to(t0.device)
        measurement.start_on(obs.sum(0).float())
        return measurement
    y = obs[:, 1].double()
    measurement = ContinuousMeasurement(
        hidden=options.hidden,
        **link,
        y_mean=float(y.mean()),
        y_std=max(float(y.std()), 1e-12),
        noise=options.noise,
    ).to(t0.device)
    measurement.start_on(obs, t0)
    return measurement


def score_entropy(obs: torch.Tensor, seed: int = 0) -> float:
    """``H[y]`` in bits of the scores in ``obs`` (rows ``(weight, y, dy)``): the
    k-nearest-neighbour entropy of at most 10,000 of them, fuzzed as MAVE-NN does
    (:func:`bpm.runtime.information.continuous_entropy_for_I_var`)."""
    y = obs[:, 1].double().cpu().numpy()[obs[:, 0].cpu().numpy() > 0]
    return float(information.continuous_entropy_for_I_var(y, np.random.default_rng(seed))[0])


def split_entropy(kind: str, obs: torch.Tensor, seed: int = 0) -> float | None:
    """The entropy term of a split's I_var for :func:`~bpm.runtime.train.evaluate`:
    ``H[y]`` for scores, None for reads (evaluate takes it from the bin totals)."""
    return score_entropy(obs, seed) if kind == "continuous" else None


def latent(measurement: nn.Module, t: torch.Tensor) -> torch.Tensor:
    """The prediction the information is measured on: ``E[y | t]`` for scores, the
    link's latent brightness for reads (each monotone in ``t``)."""
    if kind_of(measurement) == "continuous":
        return measurement.mean(t)
    if hasattr(measurement, "latent"):
        return measurement.latent(t)
    return measurement.mean(t)  # the affine process: its mean log brightness


def prediction_metrics(joint, x: torch.Tensor, obs: torch.Tensor, seed: int = 0) -> dict:
    """``I_pred_bits`` (and its standard error) and, for scores, ``R2`` of one split."""
    if len(x) == 0:
        return {"I_pred_bits": float("nan")}
    joint.eval()
    with torch.no_grad():
        chunks = [x[i : i + 65536] for i in range(0, len(x), 65536)]
        parts = [latent(joint.measurement, joint.t(chunk)) for chunk in chunks]
    z = torch.cat(parts).double().cpu().numpy()
    o = obs.double().cpu().numpy()
    rng = np.random.default_rng(seed)
    if not np.isfinite(z).all():
        return {"I_pred_bits": float("nan")}
    if kind_of(joint.measurement) == "continuous":
        found, se = information.mi_continuous(z, o[:, 1], k=5, rng=rng)
        r2 = information.r_squared(z, o[:, 1])
        return {"I_pred_bits": found, "I_pred_se_bits": se, "R2": r2}
    found, se = information.mi_mixed_counts(z, o, k=5, rng=rng)
    return {"I_pred_bits": found, "I_pred_se_bits": se}


def predicted_columns(measurement: nn.Module, t: torch.Tensor) -> dict:
    """The predicted measurement beside ``t`` in ``bpm predict``: ``y_hat`` (``E[y | t]``)
    for a score, ``selected_fraction`` for a count pair, nothing for a sort."""
    kind = kind_of(measurement)
    with torch.no_grad():
        if kind == "continuous":
            return {"y_hat": measurement.mean(t).double().cpu().numpy()}
        if kind == "counts":
            return {"selected_fraction": measurement.selected_fraction(t).double().cpu().numpy()}
    return {}
