"""The count-pair measurement process: reads of each sequence in a reference library and
a selected one, with overdispersion.

DMS enrichment (reads before and after selection), MPRAs (DNA and RNA barcode reads) and
splicing assays (total reads and reads including the exon) all count each sequence twice.
The process is on the raw counts, so that a variant seen in 10 reads weighs what 10 reads
are worth (a log ratio with a pseudocount weighs it like one seen in 10,000)::

    p(t) = P(a read of the sequence is a selected one)   (two-bin ordinal, monotone in t)
    k | n ~ BetaBinomial(n, kappa p, kappa (1 - p))

with ``n`` the sequence's reads in both columns together (``input + selected``; for a
nested pair such as ``total, included`` the reader has already written ``total -
included, included``) and ``k`` its selected reads. ``p(t)`` is the two-bin case of
:class:`~bpm.runtime.measurement.OrdinalMeasurement` (its monotone link, floor and
background); ``kappa`` is learned: large ``kappa`` is the binomial, small ``kappa`` lets
the fraction of a sequence vary from its prediction beyond counting noise (library
preparation, PCR jackpots, bottlenecks). The likelihood is the probability of the reads
in their order (the binomial coefficient, which does not depend on the parameters, left
out, as for sort-seq), so ``I_var = H[read's column] - NLL`` per read, as for sort-seq.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .measurement import OrdinalMeasurement

KIND = "counts"


class CountPairMeasurement(OrdinalMeasurement):
    """Beta-binomial p(selected reads | reads, t) with a monotone ``p(t)``; ``log_kappa``
    starts the overdispersion (``kappa = 100``: close to binomial at ordinary depths)."""

    kind = KIND

    def __init__(
        self,
        hidden: int = 2,
        transform: str = "log",
        center: float = 0.0,
        scale: float = 1.0,
        floor: float | None = None,
        log_kappa: float = math.log(100.0),
        n_bins: int = 2,
    ):
        if n_bins != 2:
            raise ValueError("a count pair has two columns")
        super().__init__(2, hidden, transform, center, scale, floor)
        self.log_kappa = nn.Parameter(torch.tensor(float(log_kappa)))

    def config(self) -> dict:
        config = super().config()
        config.pop("n_bins")
        return {"kind": KIND, **config}

    def kappa(self) -> float:
        """The fitted concentration ``kappa`` (the binomial as it grows)."""
        return float(self.log_kappa.detach().exp())

    def selected_fraction(self, t: torch.Tensor) -> torch.Tensor:
        """``p(t)``, the expected fraction of a sequence's reads that are selected, ``[N]``."""
        return self.log_probs(t)[:, 1].exp()

    def log_likelihood(self, t: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """``log P(reads | t)`` of each row (nats, in read order), shape ``[N]``."""
        log_p = self.log_probs(t)
        kappa = self.log_kappa.clamp(-8.0, 20.0).exp()
        alpha = kappa * log_p[:, 1].exp()
        beta = kappa * log_p[:, 0].exp()
        other, chosen = counts[:, 0], counts[:, 1]
        n = other + chosen
        return (
            torch.lgamma(chosen + alpha)
            - torch.lgamma(alpha)
            + torch.lgamma(other + beta)
            - torch.lgamma(beta)
            + torch.lgamma(kappa)
            - torch.lgamma(n + kappa)
        )

    def physical(self) -> dict:
        """The fitted process in words and numbers, for summary.json."""
        return {
            "link": "flexible",
            "measurement": KIND,
            "hidden": self.hidden,
            "floor": self.floor(),
            "kappa": self.kappa(),
            "background_fraction": float(torch.sigmoid(self.background_mix.detach())),
        }
