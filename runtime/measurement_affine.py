"""The affine measurement process: log brightness linear in ``log t``, cut at the sort's gates.

A cell whose reporter is transcribed at rate ``t`` shows log brightness::

    y = a + b log(t + f) + sigma * N(0, 1)

(``b = 1``: a reporter linear in transcription; learned with ``learn_slope``; ``f > 0``
a learned floor, the brightness a cell shows whatever its reporter), and the sorter
puts it in bin ``k`` when ``c_{k-1} < y <= c_k``. So, with ``mu = a + b log(t + f)``::

    P(bin = k | t) = Phi((c_k - mu) / sigma) - Phi((c_{k-1} - mu) / sigma)

(an ordinal probit), mixed with a ``t``-independent background as in
:class:`~bpm.runtime.measurement.OrdinalMeasurement`. With ``gates`` (the ``B - 1``
inner bin boundaries in natural-log brightness that the sort recorded) the cutpoints
are those gates, fixed, and only ``a``, ``sigma``, ``f``, the background (and ``b``)
are learned: the gates fix the brightness scale, so ``sigma`` and with it the energy
scale are determined by the data. Without gates the cutpoints are learned (ordered)
and ``a`` is held at 0 (it would only shift them); then, as for any ordinal model,
the latent brightness is seen only up to its scale. This is the process ``bpm
simulate`` draws from (``floor``, ``background``, ``noise`` = ``sigma``, ``a = 0``,
``b = 1``), so a fit with the recorded gates can recover the simulation's numbers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.special import log_ndtr, ndtri

from .measurement import BinnedReads, mixing_log_weights

KIND = "affine"


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(x))`` for ``x < 0``, accurate on both sides of ``-log 2``."""
    x = x.clamp_max(-1e-7 if x.dtype == torch.float32 else -1e-15)
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def log_interval(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """``log(Phi(hi) - Phi(lo))`` for ``lo < hi`` (either may be infinite), stably.

    In the upper half the difference is taken between upper tails
    (``Phi(-lo) - Phi(-hi)``), so neither side rounds to 1. Infinite ends are taken at
    +-1000 standard deviations (the same value): their second derivatives would be
    ``nan`` and poison every Hessian of the likelihood (``0 * inf`` through the branch
    ``torch.where`` does not take).
    """
    lo, hi = lo.clamp(-1e3, 1e3), hi.clamp(-1e3, 1e3)
    upper = (lo + hi) > 0
    first = torch.where(upper, -lo, hi)  # the larger tail probability's argument
    second = torch.where(upper, -hi, lo)
    big = log_ndtr(first)
    return big + log1mexp(log_ndtr(second) - big)


class AffineMeasurement(BinnedReads):
    """Ordinal probit ``p(bin | t)`` with ``mu = a + b log(t + f)`` and noise ``sigma``.

    ``n_bins`` ordered bins (dimmest first). ``gates``: the ``n_bins - 1`` inner bin
    boundaries in natural-log brightness (fixed cutpoints), or None (learned
    cutpoints, ``a`` held at 0). ``learn_slope``: learn ``b`` (else 1). ``offset``,
    ``sigma``, ``floor`` and ``slope`` are the starting values. The ``transform`` is
    always ``log`` (it reads ``log(t + f)``), for code that asks.
    """

    transform = "log"

    def __init__(
        self,
        n_bins: int,
        gates=None,
        learn_slope: bool = False,
        offset: float = 0.0,
        sigma: float = 1.0,
        floor: float = 1e-3,
        slope: float = 1.0,
    ):
        super().__init__()
        if n_bins < 2:
            raise ValueError("a measurement process needs at least two bins")
        if gates is not None and len(gates) != n_bins - 1:
            raise ValueError(f"{n_bins} bins need {n_bins - 1} gates, not {len(gates)}")
        if gates is not None and any(b <= a for a, b in zip(gates, gates[1:], strict=False)):
            raise ValueError(f"gates must increase, got {list(gates)}")
        if sigma <= 0 or floor <= 0 or slope <= 0:
            raise ValueError("sigma, floor and slope must be positive")
        self.n_bins = n_bins
        self.gated = gates is not None
        self.learn_slope = bool(learn_slope)
        if self.gated:
            self.register_buffer("gates", torch.tensor([float(g) for g in gates]))
            self.offset = nn.Parameter(torch.tensor(float(offset)))
        else:
            self.register_buffer("offset", torch.tensor(0.0))
            self.first_cut = nn.Parameter(torch.tensor(-1.0))
            self.raw_gaps = nn.Parameter(torch.full((n_bins - 2,), _inverse_softplus(0.3)))
        log_slope = torch.tensor(math.log(slope))
        if self.learn_slope:
            self.log_slope = nn.Parameter(log_slope)
        else:
            self.register_buffer("log_slope", log_slope)
        self.log_sigma = nn.Parameter(torch.tensor(math.log(sigma)))
        self.log_floor = nn.Parameter(torch.tensor(math.log(floor)))
        self.background_logits = nn.Parameter(torch.zeros(n_bins))
        self.background_mix = nn.Parameter(torch.tensor(-3.0))

    def config(self) -> dict:
        """The constructor arguments, for saving (``kind`` names the class)."""
        return {
            "kind": KIND,
            "n_bins": self.n_bins,
            "gates": [float(g) for g in self.gates] if self.gated else None,
            "learn_slope": self.learn_slope,
        }

    # ------------------------------------------------------------ the parameters

    def cutpoints(self) -> torch.Tensor:
        """The ``n_bins - 1`` ordered cutpoints in log brightness (the gates, if given)."""
        if self.gated:
            return self.gates
        gaps = F.softplus(self.raw_gaps)
        return torch.cat([self.first_cut.reshape(1), self.first_cut + torch.cumsum(gaps, 0)])

    def set_cutpoints(self, cuts: torch.Tensor) -> None:
        """Start learned cutpoints at ``cuts`` (increasing; no-op with gates)."""
        if self.gated:
            return
        gaps = (cuts[1:] - cuts[:-1]).clamp_min(1e-3)
        with torch.no_grad():
            self.first_cut.copy_(cuts[0])
            self.raw_gaps.copy_(gaps + torch.log(-torch.expm1(-gaps)))

    def floor(self) -> float:
        """The floor ``f`` added to ``t`` before the log."""
        return float(self.log_floor.detach().exp())

    def sigma(self) -> float:
        """The noise ``sigma`` of log brightness (natural log)."""
        return float(self.log_sigma.detach().exp())

    def slope(self) -> float:
        """The slope ``b`` of log brightness on ``log(t + f)``."""
        return float(self.log_slope.detach().exp())

    def background_fraction(self) -> float:
        """The fraction of reads whose bin does not depend on ``t``."""
        return float(torch.sigmoid(self.background_mix.detach()))

    def physical(self) -> dict:
        """The fitted process in natural units: ``offset`` (a), ``slope`` (b), ``sigma``,
        ``floor`` (f), ``background`` (fraction) and whether the cutpoints were gates."""
        return {
            "link": KIND,
            "offset": float(self.offset.detach()),
            "slope": self.slope(),
            "sigma": self.sigma(),
            "floor": self.floor(),
            "background": self.background_fraction(),
            "gates": self.gated,
        }

    # ------------------------------------------------------------ p(bin | t)

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """``mu = a + b log(t + f)``, the mean log brightness, shape ``[N]``."""
        return self.offset + self.log_slope.exp() * torch.log(
            t.clamp_min(0.0) + self.log_floor.exp()
        )

    latent = mean

    def ordered_log_probs(self, t: torch.Tensor) -> torch.Tensor:
        """``log p(bin | t)`` of the probit part, shape ``[N, n_bins]``."""
        z = (self.cutpoints()[None, :] - self.mean(t)[:, None]) / self.log_sigma.exp()
        inf = z.new_full((z.shape[0], 1), math.inf)
        lo = torch.cat([-inf, z], dim=1)
        hi = torch.cat([z, inf], dim=1)
        return log_interval(lo, hi)

    def log_probs(self, t: torch.Tensor) -> torch.Tensor:
        """``log p(bin | t)``, shape ``[N, n_bins]``: the probit part mixed with background."""
        background = F.log_softmax(self.background_logits, 0)
        log_pi, log_rest = mixing_log_weights(self.background_mix)
        return torch.logaddexp(log_pi + background[None, :], log_rest + self.ordered_log_probs(t))

    # ------------------------------------------------------------ the training core's interface

    def start_on(self, counts: torch.Tensor, t0: torch.Tensor) -> None:
        """Start ``a``, ``sigma`` (and learned cutpoints) so that the predicted bin
        fractions at the starting outputs ``t0`` match the reads per bin ``counts``.

        The latent brightness over the library is taken as normal: with gates, its mean
        ``m`` and sd ``s`` come from a line through the gates against the normal quantiles
        of the cumulative read fractions, then ``a = m - mean(b log(t0 + f))`` and
        ``sigma^2 = s^2 - var(b log(t0 + f))`` (at least ``s / 2``: the energies start
        small and grow). Without gates, ``sigma = 1`` and the cutpoints are put at those
        quantiles of the latent brightness.
        """
        with torch.no_grad():
            counts = counts.double()
            cumulative = (torch.cumsum(counts, 0) / counts.sum())[:-1].clamp(1e-4, 1 - 1e-4)
            q = ndtri(cumulative)
            mu = self.mean(t0).double()
            mu_mean, mu_var = float(mu.mean()), float(mu.var()) if len(mu) > 1 else 0.0
            if self.gated:
                g = self.gates.double()
                if len(g) >= 2 and float(q[-1] - q[0]) > 1e-6:
                    qc = q - q.mean()
                    s = float((qc * (g - g.mean())).sum() / (qc * qc).sum())
                    s = s if s > 0 else float(g[-1] - g[0]) / max(float(q[-1] - q[0]), 1e-6)
                else:
                    s = 1.0
                m = float((g - s * q).mean())
                sigma = math.sqrt(max(s * s - mu_var, (s / 2) ** 2))
                self.offset.copy_(torch.tensor(m - mu_mean))
            else:
                sigma = 1.0
                s = math.sqrt(sigma * sigma + mu_var)
                self.set_cutpoints((mu_mean + s * q).to(self.first_cut.dtype))
            self.log_sigma.fill_(math.log(sigma))

    def restandardize(self, t: torch.Tensor) -> None:
        """Nothing to re-scale: the link has no units to spread (kept for the training
        core, which calls it once the energies have grown)."""
