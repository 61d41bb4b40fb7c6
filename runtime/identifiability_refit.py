"""The refit behind each profile-likelihood point of :mod:`bpm.runtime.identifiability`.

:class:`Shapes` holds every site table at its fitted shape times one scale per site and
refits the few remaining coordinates (offsets, scalars, scales, the measurement process)
by damped Newton steps with their exact float64 Hessian.
"""

from __future__ import annotations

import torch

from . import contract

#: The parts of a site energy that depend on the sequence (scaled together).
PARTS = ("matrix", "neighbor", "pairwise")


class Shapes:
    """The refit problem of a profile point: every site table held at its fitted shape
    (zero-mean gauge) times a learned scale (held where ``free_scale(site)`` is False);
    offsets, scalars and the measurement process learned as they are.

    The shapes are what the data determine best (r >= 0.99 against the truth on the
    simulations of docs/simulation.md); holding them leaves a few dozen coordinates,
    which L-BFGS takes to the optimum in tens of iterations, where the full problem
    (hundreds of matrix entries with one flat ridge) needs thousands.
    """

    def __init__(self, joint, free_scale):
        self.joint = joint
        module = joint.module
        slots = contract.layout(module)
        gauged = contract.zero_mean_gauge(module.get_params(), module)
        module.set_params({k: torch.as_tensor(v, dtype=torch.float64) for k, v in gauged.items()})
        self.tables: dict[str, list] = {}
        for site in contract.site_energies(module):
            parts = [s for s in slots.values() if s.site == site and s.kind in PARTS]
            if not parts or not all(s.learned and s.transform == "identity" for s in parts):
                continue
            stored = [contract.stored(module, s.name) for s in parts]
            self.tables[site] = [(p, p.detach().clone()) for p in stored]
        self.scales = {
            site: torch.tensor(1.0, dtype=torch.float64, requires_grad=free_scale(site))
            for site in self.tables
        }
        for site, parts in self.tables.items():
            for p, _ in parts:
                p.requires_grad_(self.scales[site].requires_grad)

    def set_scale(self, site: str, value: float) -> None:
        """Hold ``site``'s table at ``value`` times its fitted shape."""
        with torch.no_grad():
            self.scales[site].fill_(value)
        self.sync()

    def sync(self) -> None:
        """Write every table as its scale times its shape."""
        with torch.no_grad():
            for site, parts in self.tables.items():
                for p, base in parts:
                    p.copy_(self.scales[site] * base)

    def save(self) -> dict:
        """A copy of the state (the joint model's and the scales)."""
        return {
            "joint": {k: v.detach().clone() for k, v in self.joint.state_dict().items()},
            "scales": {k: float(v.detach()) for k, v in self.scales.items()},
        }

    def load(self, saved: dict) -> None:
        """Back to a state from :meth:`save`."""
        self.joint.load_state_dict(saved["joint"])
        with torch.no_grad():
            for site, value in saved["scales"].items():
                self.scales[site].fill_(value)
        self.sync()

    def refit(self, x: torch.Tensor, c: torch.Tensor, iterations: int) -> float:
        """At most ``iterations`` damped Newton steps (exact float64 Hessian of the few
        free coordinates, eigenvalues taken by magnitude, step halved until the NLL
        falls); the training reads' total NLL (nats) after them."""
        from torch.func import functional_call

        names = {id(p): n for n, p in self.joint.named_parameters()}
        tables = {id(p) for parts in self.tables.values() for p, _ in parts}
        free = [
            (n, p)
            for n, p in self.joint.named_parameters()
            if p.requires_grad and id(p) not in tables
        ]
        scaled = [site for site, s in self.scales.items() if s.requires_grad]
        theta = torch.cat(
            [p.detach().reshape(-1) for _, p in free]
            + [self.scales[site].detach().reshape(1) for site in scaled]
        )

        def nll(vector: torch.Tensor) -> torch.Tensor:
            values, k = {}, 0
            for n, p in free:
                values[n] = vector[k : k + p.numel()].reshape(p.shape)
                k += p.numel()
            for site in self.tables:
                scale = vector[k] if site in scaled else self.scales[site].detach()
                k += site in scaled
                for p, base in self.tables[site]:
                    values[names[id(p)]] = scale * base
            return -functional_call(self.joint, values, (x, c)).sum()

        current = nll(theta).detach()
        for _ in range(iterations):
            point = theta.clone().requires_grad_(True)
            loss = nll(point)
            (grad,) = torch.autograd.grad(loss, point, create_graph=True)
            rows = [
                torch.autograd.grad(grad[i], point, retain_graph=True)[0] for i in range(len(grad))
            ]
            hess = torch.stack(rows).detach()
            grad = grad.detach()
            w, v = torch.linalg.eigh((hess + hess.T) / 2)
            w = w.abs().clamp(min=1e-9 * float(w.abs().max()) + 1e-12)
            step = -v @ ((v.T @ grad) / w)
            for _ in range(30):
                trial = nll(theta + step).detach()
                if torch.isfinite(trial) and trial <= current:
                    break
                step = step / 2
            else:
                break
            done = float(current - trial) < 1e-9 * max(1.0, abs(float(current)))
            theta, current = theta + step, trial
            if done:
                break
        k = 0
        with torch.no_grad():
            for _, p in free:
                p.copy_(theta[k : k + p.numel()].reshape(p.shape))
                k += p.numel()
            for site in scaled:
                self.scales[site].fill_(float(theta[k]))
                k += 1
        self.sync()
        return float(current)
