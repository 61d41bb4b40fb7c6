"""The continuous measurement process: a score ``y`` per sequence, noisy around a monotone
function of the model output.

Deep mutational scans report a score per variant (a log enrichment, a fitness), often
with its standard error ``dy``. The process::

    y = yhat(t) + s(yhat) * e,    yhat(t) = m + d * (g(t) - c)

``g`` is the flexible link of :class:`~bpm.runtime.measurement.OrdinalMeasurement`
(``a u + sum_j b_j tanh(w_j u + d_j)`` with non-negative weights, ``u = log(t + f)``
standardized), so ``yhat`` rises with ``t`` and the direction of every energy stays fixed
by the data; ``m`` and ``d`` standardize ``y`` (the training mean and standard
deviation), ``c`` is a learned offset. The noise ``e`` is ``gaussian``, ``cauchy`` or
``skewt`` (the skewed t of Jones & Faddy 2003, shifted to mean zero so that ``yhat`` is
``E[y]``, as heavy or light tailed and as skewed as the data ask); its scale is
heteroscedastic, ``log s = s_0 + s_1 yhat + s_2 yhat^2`` (``yhat`` standardized), the
skewed t's tail parameters ``a, b > 1`` linear in ``yhat`` under a softplus (MAVE-NN's
GE noise models make them quadratic), and a measured
``dy`` adds in quadrature: the scale used is ``sqrt(s^2 + dy^2)``.

Observations are rows ``(weight, y, dy)``: ``weight`` is 1 for a measured sequence (0
for the padding rows a batch may carry), ``dy`` is 0 where no error was measured. The
likelihood is a density in the units of ``y``, so ``I_var = H[y] - NLL`` (MAVE-NN's
definition for its GE models; ``H[y]`` the k-nearest-neighbour entropy of the split's
``y``) is in bits per sequence.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .measurement import OrdinalMeasurement
from .options import NOISES

KIND = "continuous"

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class ContinuousMeasurement(nn.Module):
    """p(y | t): a monotone link to ``E[y]`` and a heteroscedastic noise model.

    ``hidden``, ``transform``, ``center``, ``scale``, ``floor`` are the link's, as for
    :class:`OrdinalMeasurement`; ``y_mean`` and ``y_std`` standardize ``y``; ``noise`` is
    one of :data:`NOISES`.
    """

    kind = KIND
    n_totals = 1

    def __init__(
        self,
        hidden: int = 2,
        transform: str = "log",
        center: float = 0.0,
        scale: float = 1.0,
        floor: float | None = None,
        y_mean: float = 0.0,
        y_std: float = 1.0,
        noise: str = "skewt",
    ):
        super().__init__()
        if noise not in NOISES:
            raise ValueError(f"noise must be one of {list(NOISES)}, not {noise!r}")
        # The link of the ordinal process with two bins: its one cutpoint is the offset c
        # (so re-standardizing, which moves the cutpoint with the link, keeps yhat).
        self.link = OrdinalMeasurement(2, hidden, transform, center, scale, floor)
        # the link's background (of bins) means nothing for a score: buffers, not parameters
        for name in ("background_logits", "background_mix"):
            _as_buffer(self.link, name)
        self.noise = noise
        self.register_buffer("y_mean", torch.tensor(float(y_mean)))
        self.register_buffer("y_std", torch.tensor(float(y_std)))
        self.log_scale = nn.Parameter(torch.tensor([math.log(0.5), 0.0, 0.0]))
        # skewed t: a, b > 1 (so that the mean and the variance exist), each linear in
        # yhat under a softplus (rows: a, b; columns: constant, slope); a = b is
        # symmetric. A quadratic term, as the scale has, let the MPSA fit fall into
        # an optimum with test R2 0.47 instead of 0.70 (docs/continuous.md).
        self.raw_tails = nn.Parameter(torch.tensor([[_inverse_softplus(3.0), 0.0]] * 2))
        if noise != "skewt":
            _as_buffer(self, "raw_tails")

    @property
    def hidden(self) -> int:
        return self.link.hidden

    def config(self) -> dict:
        """The constructor arguments, for saving (``kind`` names the class)."""
        link = self.link.config()
        link.pop("n_bins")
        return {
            "kind": KIND,
            **link,
            "y_mean": float(self.y_mean),
            "y_std": float(self.y_std),
            "noise": self.noise,
        }

    # ------------------------------------------------------------ the process

    def standardized_mean(self, t: torch.Tensor) -> torch.Tensor:
        """``(yhat - m) / d``, shape ``[N]``."""
        return self.link.latent(t) - self.link.first_cut

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """``yhat(t) = E[y | t]`` in the units of ``y``, shape ``[N]``."""
        return self.y_mean + self.y_std * self.standardized_mean(t)

    def tails(self, z: torch.Tensor | None = None) -> torch.Tensor:
        """The skewed t's ``a`` and ``b`` (each above 1) at standardized means ``z``,
        shape ``[2, N]`` (``[2]`` at ``z = 0`` when ``z`` is None)."""
        z = torch.zeros((), device=self.raw_tails.device) if z is None else z
        c = self.raw_tails
        # at most 41: t tails with 82 degrees of freedom are Gaussian in all but name,
        # and far larger a or b only loses precision in the mean's lgamma differences
        raw = (c[:, :1] + c[:, 1:2] * z).clamp(-30.0, 40.0)
        return 1.0 + F.softplus(raw).squeeze(-1)

    def noise_scale(self, z: torch.Tensor) -> torch.Tensor:
        """The noise scale ``s`` (standardized units) at standardized means ``z``."""
        c = self.log_scale
        return torch.exp((c[0] + c[1] * z + c[2] * z * z).clamp(-12.0, 6.0))

    def log_density(self, e: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``log p(e)`` of the unit noise at standardized means ``z`` (mean zero for
        ``skewt`` and ``gaussian``)."""
        if self.noise == "gaussian":
            return -0.5 * e * e - LOG_SQRT_2PI
        if self.noise == "cauchy":
            return -math.log(math.pi) - torch.log1p(e * e)
        a, b = self.tails(z)
        return _jones_faddy_log_pdf(e + _jones_faddy_mean(a, b), a, b)

    def log_likelihood(self, t: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """``weight * log p(y | t)`` of each row (nats, density in ``y``'s units), ``[N]``."""
        weight, y, dy = obs[:, 0], obs[:, 1], obs[:, 2]
        z = self.standardized_mean(t)
        s = self.noise_scale(z)
        s = torch.sqrt(s * s + (dy / self.y_std) ** 2)
        e = ((y - self.y_mean) / self.y_std - z) / s
        log_p = self.log_density(e, z) - torch.log(s) - torch.log(self.y_std)
        return torch.where(weight > 0, weight * log_p, torch.zeros_like(log_p))

    @staticmethod
    def weight(obs: torch.Tensor) -> torch.Tensor:
        """What the likelihood is reported per: sequences, shape ``[N]``."""
        return obs[:, 0]

    @staticmethod
    def totals(obs: torch.Tensor) -> torch.Tensor:
        """Sequences summed over rows (H[y] is estimated from the values, not totals)."""
        return obs[:, :1].sum(0)

    # ------------------------------------------------------------ starting and moving

    def start_on(self, obs: torch.Tensor, t0: torch.Tensor) -> None:
        """Start with ``yhat`` the mean of ``y`` and the noise at its spread (the link
        linear, its tanh units off until the first re-standardizing)."""
        with torch.no_grad():
            self.link.first_cut.copy_(self.link.latent(t0).mean())
            self.link.raw_out.fill_(-20.0)
            self.log_scale.copy_(torch.tensor([0.0, 0.0, 0.0]))

    def restandardize(self, t: torch.Tensor) -> None:
        """The link re-centred on the outputs ``t`` (:meth:`OrdinalMeasurement.restandardize`;
        its cutpoint moves with it, so ``yhat``'s linear part is unchanged)."""
        self.link.restandardize(t)

    def floor(self) -> float:
        return self.link.floor()

    def physical(self) -> dict:
        """The fitted process in words and numbers, for summary.json."""
        out = {
            "link": "flexible",
            "measurement": KIND,
            "noise": self.noise,
            "hidden": self.hidden,
            "floor": self.floor(),
            "y_mean": float(self.y_mean),
            "y_std": float(self.y_std),
            "log_noise_scale_coefficients": [float(v) for v in self.log_scale.detach()],
        }
        if self.noise == "skewt":
            out["skewt_a_b_at_mean"] = [float(v) for v in self.tails().detach()]
        return out


def _as_buffer(module: nn.Module, name: str) -> None:
    """Turn parameter ``name`` of ``module`` into a buffer of the same value (kept in the
    state dict, never learned or differentiated)."""
    value = getattr(module, name).detach().clone()
    delattr(module, name)
    module.register_buffer(name, value)


def _jones_faddy_log_pdf(e: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The log density of Jones & Faddy's skewed t with tail parameters ``a`` and ``b``
    (a = b: Student's t with 2a degrees of freedom, scaled)::

        f(e) = (1 + e/r)^(a + 1/2) (1 - e/r)^(b + 1/2) / (2^(a+b-1) B(a, b) sqrt(a + b)),
        r = sqrt(a + b + e^2)
    """
    n = a + b
    r = torch.sqrt(n + e * e)
    log_norm = (n - 1) * math.log(2.0) + _log_beta(a, b) + 0.5 * torch.log(n)
    return (a + 0.5) * torch.log1p(e / r) + (b + 0.5) * torch.log1p(-e / r) - log_norm


def _jones_faddy_mean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The mean of the Jones-Faddy skewed t (finite for a, b > 1/2)."""
    log_ratio = torch.lgamma(a - 0.5) + torch.lgamma(b - 0.5) - torch.lgamma(a) - torch.lgamma(b)
    return (a - b) * torch.sqrt(a + b) / 2 * torch.exp(log_ratio)


def _log_beta(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)
