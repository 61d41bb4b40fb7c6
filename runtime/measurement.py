"""Measurement processes p(bin | t) for sort-seq data, and the information metrics.

Sort-seq bins are ordered by fluorescence, so the measurement process is ordinal: a
latent brightness ``z = g(t)``, with ``g`` monotone increasing, is cut into bins by
ordered cutpoints (a cumulative-logit model)::

    P(bin <= k | t) = sigmoid(c_k - g(t)),   c_0 < c_1 < ... < c_{B-2}
    g(u) = a u + sum_j b_j tanh(w_j u + d_j),  a, b_j, w_j >= 0,
    u = log(t + f)  (or t)

``f > 0`` is a learned floor: what the cells show whatever their reporter's
transcription rate (autofluorescence, a little read-through). Without it a link on
``log t`` has to bend into an exponential to fit dim sequences, and the tanh units can
build that bend for any energy scale: on the lac data the fit then shrank the RNAP
matrix tenfold and found G_I = -0.4 kcal/mol, an optimum as likely as the physical one.
With the floor, the default fit finds -3.5 kcal/mol and fits every split better
(docs/fitting.md, "The lac benchmark").

plus a t-independent background (a fixed fraction of reads in a learned bin distribution,
for cells sorted regardless of their reporter: in the lac data about 10% of the reads,
mostly in bin 0, at every level of t). A brighter-predicted sequence can only move reads toward
brighter bins (``P(bin >= k | t)`` is non-decreasing in t for every k), so the sign of
``t`` (and of every energy behind it) is fixed by the data, unlike an unconstrained
softmax over bins, which fits the mirror image just as well.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: The background mixing logit is read within +-this: beyond it the background's share
#: (under 1e-13) changes no likelihood, while torch's second derivative of logsigmoid
#: overflows to nan (a one-site fit drifted to -713, and its Hessian was nan throughout).
MIX_BOUND = 30.0


def mixing_log_weights(mix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log pi, log(1 - pi))`` of the background share ``pi = sigmoid(mix)``, with
    ``mix`` held within :data:`MIX_BOUND`."""
    mix = mix.clamp(-MIX_BOUND, MIX_BOUND)
    return F.logsigmoid(mix), F.logsigmoid(-mix)


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class BinnedReads(nn.Module):
    """What every sort-seq measurement process shares: reads counted in ``n_bins``
    ordered bins, given ``log_probs(t)`` (``[N, n_bins]``) by the subclass. This is the
    measurement-process interface of the training core (:mod:`bpm.runtime.train`)."""

    n_bins: int

    def log_probs(self, t: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """``p(bin | t)``, shape ``[N, n_bins]``; each row sums to 1."""
        return self.log_probs(t).exp()

    def log_likelihood(self, t: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Log-likelihood of each row's reads given its ``t`` (nats, the multinomial
        coefficient left out), shape ``[N]``."""
        return (counts * self.log_probs(t)).sum(1)

    @staticmethod
    def weight(counts: torch.Tensor) -> torch.Tensor:
        """What the likelihood is reported per: reads, shape ``[N]``."""
        return counts.sum(1)

    @staticmethod
    def totals(counts: torch.Tensor) -> torch.Tensor:
        """Reads per bin, summed over rows (their entropy is H[bin] of I_var)."""
        return counts.sum(0)

    @property
    def n_totals(self) -> int:
        return self.n_bins


class OrdinalMeasurement(BinnedReads):
    """Cumulative-logit p(bin | t) with a monotone increasing link ``g``.

    ``n_bins`` ordered bins (dimmest first), ``hidden`` tanh units in ``g``. ``transform``
    is ``"log"`` (``u = log t``, for positive outputs such as transcription rates) or
    ``"identity"``. ``center`` and ``scale`` standardize ``u`` before ``g``. With the
    log transform, ``floor`` starts the learned floor ``f`` (default ``exp(center - 3)``,
    5% of a typical ``t``); ``floor=0`` leaves it out (a link affine in ``log t`` when
    ``hidden=0``), and the identity transform has none (there a floor would only shift
    the cutpoints).
    """

    def __init__(
        self,
        n_bins: int,
        hidden: int = 2,
        transform: str = "log",
        center: float = 0.0,
        scale: float = 1.0,
        floor: float | None = None,
    ):
        super().__init__()
        if n_bins < 2:
            raise ValueError("a measurement process needs at least two bins")
        if transform not in ("log", "identity"):
            raise ValueError(f"transform must be 'log' or 'identity', not {transform!r}")
        self.n_bins = n_bins
        self.hidden = hidden
        self.transform = transform
        self.register_buffer("center", torch.tensor(float(center)))
        self.register_buffer("scale", torch.tensor(float(scale)))
        # g starts as the identity on standardized u; the tanh units start small.
        self.raw_slope = nn.Parameter(torch.tensor(_inverse_softplus(1.0)))
        self.raw_out = nn.Parameter(torch.full((hidden,), _inverse_softplus(0.05)))
        self.raw_in = nn.Parameter(torch.full((hidden,), _inverse_softplus(1.0)))
        self.bias_in = nn.Parameter(torch.linspace(-2.0, 2.0, hidden))
        # A background component: a fraction pi of reads lands in bins regardless of t
        # (cells sorted by autofluorescence or debris, typically the dimmest bin). pi does
        # not depend on t, so brighter t still moves reads toward brighter bins.
        self.background_logits = nn.Parameter(torch.zeros(n_bins))
        self.background_mix = nn.Parameter(torch.tensor(-2.0))
        # Cutpoints: the first, then positive gaps, so they stay ordered.
        self.first_cut = nn.Parameter(torch.tensor(-2.0))
        self.fixed_floor = floor == 0.0 or transform != "log"
        if self.fixed_floor:
            self.register_buffer("log_floor", torch.tensor(-math.inf))
        else:
            start = center - 3.0 if floor is None else math.log(floor)
            self.log_floor = nn.Parameter(torch.tensor(float(start)))
        self.raw_gaps = nn.Parameter(torch.full((n_bins - 2,), _inverse_softplus(0.5)))

    def config(self) -> dict:
        """The constructor arguments, for saving."""
        return {
            "n_bins": self.n_bins,
            "hidden": self.hidden,
            "transform": self.transform,
            "center": float(self.center),
            "scale": float(self.scale),
            **({"floor": 0.0} if self.fixed_floor and self.transform == "log" else {}),
        }

    def set_cutpoints(self, cumulative: torch.Tensor) -> None:
        """Start the cutpoints at the logits of the reads' cumulative bin fractions."""
        p = cumulative[:-1].clamp(1e-4, 1 - 1e-4)
        cuts = torch.log(p) - torch.log1p(-p)
        gaps = (cuts[1:] - cuts[:-1]).clamp_min(1e-3)
        with torch.no_grad():
            self.first_cut.copy_(cuts[0])
            self.raw_gaps.copy_(gaps + torch.log(-torch.expm1(-gaps)))

    def restandardize(self, t: torch.Tensor) -> None:
        """Re-centre and re-scale ``u`` on the outputs ``t`` without changing ``p(bin | t)``'s
        linear part, and spread the tanh units afresh over the new range.

        Called once the energies have grown from their small initial values: the units
        placed on the initial, narrow range of ``u`` would otherwise all saturate.
        """
        with torch.no_grad():
            u = self.raw_features(t)
            center, scale = u.mean(), u.std().clamp_min(1e-6)
            slope = F.softplus(self.raw_slope)
            shift = slope * (center - self.center) / self.scale
            new_slope = slope * scale / self.scale
            self.raw_slope.copy_(new_slope + torch.log(-torch.expm1(-new_slope)))
            self.first_cut.sub_(shift)
            self.center.copy_(center)
            self.scale.copy_(scale)
            self.raw_out.fill_(_inverse_softplus(1e-3))
            self.raw_in.fill_(_inverse_softplus(1.0))
            self.bias_in.copy_(torch.linspace(-2.0, 2.0, self.hidden))

    def cutpoints(self) -> torch.Tensor:
        """The ``n_bins - 1`` ordered cutpoints."""
        gaps = F.softplus(self.raw_gaps)
        return torch.cat([self.first_cut.reshape(1), self.first_cut + torch.cumsum(gaps, 0)])

    def floor(self) -> float:
        """The floor ``f`` added to ``t`` before the log (0 when left out)."""
        return float(self.log_floor.detach().exp())

    def raw_features(self, t: torch.Tensor) -> torch.Tensor:
        """``log(t + f)`` (log transform) or ``t``, before standardizing, shape ``[N]``."""
        if self.transform != "log":
            return t
        if self.fixed_floor:
            return torch.log(t.clamp_min(1e-30))
        return torch.log(t.clamp_min(0.0) + self.log_floor.exp())

    def features(self, t: torch.Tensor) -> torch.Tensor:
        """The standardized input ``u`` of the link, shape ``[N]``."""
        return (self.raw_features(t) - self.center) / self.scale

    def latent(self, t: torch.Tensor) -> torch.Tensor:
        """``z = g(t)``, monotone increasing in ``t``, shape ``[N]``.

        The tanh units are rows and sequences run along them (``[hidden, N]``): on CPU,
        elementwise work over a last dimension of two runs several times slower."""
        u = self.features(t)
        hidden = torch.tanh(F.softplus(self.raw_in)[:, None] * u + self.bias_in[:, None])
        return F.softplus(self.raw_slope) * u + F.softplus(self.raw_out) @ hidden

    def log_probs(self, t: torch.Tensor) -> torch.Tensor:
        """``log p(bin | t)``, shape ``[N, n_bins]``: the ordered part mixed with background.

        Computed in probability space (differences of the cumulative sigmoid), which is
        about twice as fast as the log-space form; the background keeps every bin's
        probability away from zero, and a floor guards the rest. A transposed view:
        inside, bins are rows and sequences run along them, several times faster on CPU
        than elementwise work over a last dimension of ten (reads laid out the same way,
        ``sources.column_major``, multiply it without a copy).
        """
        z = self.latent(t)
        cdf = torch.sigmoid(self.cutpoints()[:, None] - z)  # [B-1, N]
        zero = cdf.new_zeros(1, cdf.shape[1])
        ordered = torch.diff(cdf, dim=0, prepend=zero, append=zero + 1.0)
        pi = torch.sigmoid(self.background_mix.clamp(-MIX_BOUND, MIX_BOUND))
        background = torch.softmax(self.background_logits, 0)[:, None]
        return torch.log((pi * background + (1.0 - pi) * ordered).clamp_min(1e-30)).T

    def log_probs_stable(self, t: torch.Tensor) -> torch.Tensor:
        """``log p(bin | t)`` computed in log space throughout (slower, for checks)."""
        ordered = self.ordered_log_probs(t)
        background = F.log_softmax(self.background_logits, 0)
        log_pi, log_rest = mixing_log_weights(self.background_mix)
        return torch.logaddexp(log_pi + background[None, :], log_rest + ordered)

    def ordered_log_probs(self, t: torch.Tensor) -> torch.Tensor:
        """``log p(bin | t)`` of the ordered (cumulative-logit) part, shape ``[N, n_bins]``."""
        z = self.latent(t)
        cuts = self.cutpoints()
        logits = cuts[None, :] - z[:, None]  # [N, B-1]
        # log P(bin <= k) and log P(bin > k), stably.
        log_le = F.logsigmoid(logits)
        log_gt = F.logsigmoid(-logits)
        # P(bin = k) = P(<= k) - P(<= k-1) = sigmoid(l_k) - sigmoid(l_{k-1})
        #            = sigmoid(l_k) * sigmoid(-l_{k-1}) * (1 - exp(l_{k-1} - l_k)).
        inner = (
            log_le[:, 1:]
            + log_gt[:, :-1]
            + torch.log(-torch.expm1((logits[:, :-1] - logits[:, 1:]).clamp_max(-1e-6)))
        )
        return torch.cat([log_le[:, :1], inner, log_gt[:, -1:]], dim=1)

    def start_on(self, counts: torch.Tensor) -> None:
        """Cutpoints from the reads' cumulative bin fractions; the link's tanh units off
        until the first re-standardizing (the link starts linear)."""
        self.set_cutpoints(torch.cumsum(counts, 0) / counts.sum())
        with torch.no_grad():
            self.raw_out.fill_(-20.0)
