"""Optimizers as plug-ins of the training core (:mod:`bpm.runtime.train`).

An optimizer owns its torch optimizer and schedule and offers one method,
``step(closure) -> (loss, iterations)``: it calls ``closure`` (which zeroes the
gradients, computes the normalized loss on the step's batch and back-propagates) as
often as it needs, updates the parameters, and says how many of its own iterations
that was. ``converged`` is True once the optimizer's own tolerances say it is done.
Adding an optimizer is adding a class here with that method.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

#: The one-cycle schedule's warm-up, as a fraction of its length.
WARMUP = 0.15

#: A fit run to the training optimum (``stop="training"``) ends once two L-BFGS steps
#: in a row (10 iterations each) lowered the training NLL by less than this many nats,
#: summed over all training reads: 0.5% of the 1.92 nats that a 95% profile-likelihood
#: interval spans, so no likelihood-based conclusion can still move.
STALL_NATS = 0.01


class AdamOneCycle:
    """Adam with a one-cycle learning-rate schedule peaking at ``lr`` over ``steps`` steps."""

    name = "adam"

    def __init__(self, params: Sequence[torch.Tensor], lr: float, steps: int):
        self.opt = torch.optim.Adam(list(params), lr=lr)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(
            self.opt, max_lr=lr, total_steps=max(steps, 1), pct_start=WARMUP
        )
        self.converged = False

    def step(self, closure: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, int]:
        loss = closure()
        if torch.isfinite(loss):
            self.opt.step()
            self.sched.step()
        return loss, 1


class LBFGS:
    """L-BFGS with a strong-Wolfe line search, ``iterations_per_step`` iterations a step.

    Follows the flat directions that Adam's schedule leaves short of the optimum (matrix
    offsets, interaction energies and the link trading off against each other).
    ``converged`` once an L-BFGS step stops early on its own gradient or change
    tolerances. With ``stall`` (a decrease of the normalized loss), ``stalled`` once two
    steps in a row lowered the loss by less than that: the likelihood has stopped
    changing on the scale that matters statistically (see :data:`STALL_NATS`).
    """

    name = "lbfgs"

    def __init__(
        self,
        params: Sequence[torch.Tensor],
        iterations_per_step: int = 10,
        stall: float | None = None,
    ):
        self.per_step = iterations_per_step
        self.stall = stall
        self.stalled = False
        self._losses: list[float] = []
        self.opt = torch.optim.LBFGS(
            list(params),
            lr=1.0,
            max_iter=iterations_per_step,
            max_eval=4 * iterations_per_step,
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-9,
            tolerance_change=1e-12,
        )
        self.converged = False

    def step(self, closure: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, int]:
        first = self.opt.param_groups[0]["params"][0]
        state = self.opt.state[first]
        before = (state.get("n_iter", 0), state.get("func_evals", 0))
        try:
            loss = self.opt.step(closure)
        except IndexError:  # torch's strong-Wolfe search met a non-finite loss it cannot bracket
            return torch.tensor(float("nan")), self.per_step
        state = self.opt.state[first]
        ran = state.get("n_iter", 0) - before[0]
        evals = state.get("func_evals", 0) - before[1]
        self.converged = ran < self.per_step and evals < 4 * self.per_step
        if self.stall is not None and torch.isfinite(loss):
            self._losses.append(float(loss.detach()))
            last = self._losses[-3:]
            drops = [a - b for a, b in zip(last, last[1:], strict=False)]
            self.stalled = len(drops) == 2 and all(d < self.stall for d in drops)
            self.converged = self.converged or self.stalled
        return loss, self.per_step
