"""The training core: one step, one evaluation, one early-stopping loop, for every path.

Full batch, minibatches and several processes differ only in their batch source
(:mod:`bpm.runtime.sources`) and in whether the joint model is wrapped for
DistributedDataParallel; optimizers plug in through :mod:`bpm.runtime.optimizers` and
measurement processes through :class:`Joint` (any module with ``log_likelihood(t, obs)``
per row, ``weight(obs)`` per row and ``totals(obs)`` summable over rows). A stage is
:func:`run_stage`: steps from a source, validation every so many steps, the best state
kept, a stop after ``patience`` checks without improvement, one history row per check.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bpm.compiler.errors import BpmError

from .contract import select_output
from .sources import Comm, entropy_bits, tensor_chunks

LOG2 = math.log(2.0)


class Joint(nn.Module):
    """The biophysical module and its measurement process as one module (what is trained,
    snapshotted, and wrapped for DistributedDataParallel)."""

    def __init__(self, module: nn.Module, measurement: nn.Module, output: str):
        super().__init__()
        self.module = module
        self.measurement = measurement
        self.output = output

    def t(self, x: torch.Tensor) -> torch.Tensor:
        """The measured model output for codes ``x``, shape ``[N]``."""
        return select_output(self.module(x), self.output)

    def forward(self, x: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """Log-likelihood of each row's observations (nats), shape ``[N]``."""
        return self.measurement.log_likelihood(self.t(x), obs)


@contextmanager
def deterministic(seed: int, threads: int | None):
    """Seeded, deterministic torch for the duration of a fit; restores the old settings."""
    old_det = torch.are_deterministic_algorithms_enabled()
    old_threads = torch.get_num_threads()
    torch.manual_seed(seed)
    use_deterministic_algorithms(True, warn_only=True)
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        use_deterministic_algorithms(old_det)
        torch.set_num_threads(old_threads)


def use_deterministic_algorithms(mode: bool, warn_only: bool = False) -> None:
    """``torch.use_deterministic_algorithms``, without importing TorchInductor when
    nothing has imported it yet: the public function imports it only to set its own
    ``deterministic`` flag (for compiled kernels, which a fit does not use), and that
    import is about a second of every fit's start-up."""
    if "torch._inductor.config" in sys.modules or not hasattr(
        torch._C, "_set_deterministic_algorithms"
    ):
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        torch._C._set_deterministic_algorithms(mode, warn_only=warn_only)


@contextmanager
def in_float64(joint: nn.Module):
    """The joint model in float64 for a stage (L-BFGS), converted back afterwards."""
    dtype = next(joint.parameters()).dtype
    joint.double()
    try:
        yield
    finally:
        joint.to(dtype)


def snapshot(joint: nn.Module) -> dict:
    """A detached copy of every parameter and buffer."""
    return {k: v.detach().clone() for k, v in joint.state_dict().items()}


def evaluate(
    joint: Joint, chunks: Iterable, comm: Comm | None = None, device=None, entropy=None
) -> dict:
    """``{"nll": bits per read, "I_var_bits": H[bin] - NLL}`` over evaluation chunks
    (``(x, obs)`` pairs; with several processes, each passes its share and the sums are
    reduced). NaN for an empty split. ``entropy`` replaces ``H[bin]`` (a continuous
    measurement's ``H[y]``, per sequence: :mod:`bpm.runtime.measurement_kinds`)."""
    comm = comm or Comm()
    joint.eval()
    nll = weight = 0.0
    totals = None
    with torch.no_grad():
        for x, obs in chunks:
            obs = obs.to(next(joint.parameters()).dtype)
            nll -= float(joint(x, obs).sum())
            weight += float(joint.measurement.weight(obs).sum())
            part = joint.measurement.totals(obs).double().cpu()
            totals = part if totals is None else totals + part
            device = x.device
    if comm.world > 1:
        n_tot = joint.measurement.n_totals
        local = [nll, weight, *(totals.tolist() if totals is not None else [0.0] * n_tot)]
        summed = comm.sum(local, device or "cpu")
        nll, weight, totals = summed[0], summed[1], torch.tensor(summed[2:])
    if weight == 0:
        return {"nll": float("nan"), "I_var_bits": float("nan")}
    bits = nll / weight / LOG2
    if entropy is None:
        entropy = entropy_bits(totals.numpy())
    return {"nll": bits, "I_var_bits": entropy - bits}


def row_log_likelihoods(
    joint: Joint, x: torch.Tensor, obs: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's log-likelihood (nats, float64) and weight (reads, or 1 for a score),
    as two arrays ``[N]``: what :func:`evaluate` sums, one row (sequence) at a time, so
    two models can be compared on the same rows (:mod:`bpm.runtime.compare`). Rows go
    through in the evaluation chunks of :func:`~bpm.runtime.sources.tensor_chunks`."""
    joint.eval()
    found, weights = [], []
    with torch.no_grad(), in_float64(joint):
        for part_x, part in tensor_chunks(x, obs.double()):
            found.append(joint(part_x, part).cpu().numpy())
            weights.append(joint.measurement.weight(part).double().cpu().numpy())
    if not found:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(found), np.concatenate(weights)


#: A fit has converged when the gradient of its training NLL (bits per read, every
#: learned parameter of the module and of the measurement process) is this small, or
#: when its last optimizer stage stopped on that optimizer's own tolerances or because
#: the training NLL had stopped changing (``stalled``, :data:`~bpm.runtime.optimizers.STALL_NATS`).
GRADIENT_TOL = 1e-4


def gradient_norm(joint: Joint, chunks: Iterable, comm: Comm | None = None) -> float:
    """The norm of the gradient of the training NLL in bits per read, in float64, over
    evaluation chunks (with several processes each passes its share)."""
    comm = comm or Comm()
    params = [p for p in joint.parameters() if p.requires_grad]
    with in_float64(joint):
        joint.train()
        for p in params:
            p.grad = None
        reads = 0.0
        for x, obs in chunks:  # gradients accumulate chunk by chunk
            obs = obs.double()
            (-joint(x, obs).sum()).backward()
            reads += float(joint.measurement.weight(obs).sum())
        comm.sum_gradients(params)
        (reads,) = comm.sum([reads], params[0].device if params else "cpu")
        squares = sum(float((p.grad**2).sum()) for p in params if p.grad is not None)
        for p in params:
            p.grad = None
    return math.sqrt(squares) / max(reads, 1e-12) / LOG2


#: How a stage ends at an optimum: its optimizer's own tolerances, or the stall rule
#: (:data:`~bpm.runtime.optimizers.STALL_NATS`). A fit and a profile refit both read it.
SETTLED_STOPS = ("converged", "stalled")


def convergence(stages, grad: float) -> dict:
    """``{"converged", "gradient_norm", "stopped"}``: converged when the training NLL's
    gradient is below :data:`~bpm.runtime.train.GRADIENT_TOL` bits per read or the last
    stage stopped on its optimizer's own tolerances or stalled; ``stopped`` is why the
    last stage ended."""
    last = stages[-1].stopped if stages else "no stage"
    return {
        "converged": bool(grad < GRADIENT_TOL or last in SETTLED_STOPS),
        "gradient_norm": grad,
        "stopped": last,
    }


def not_converged_note(found: dict) -> str:
    """The words for a fit that stopped short of the training optimum."""
    return (
        f"the fit is not converged: it stopped on {found['stopped']} with the training "
        f"NLL's gradient at {found['gradient_norm']:.1e} bits per read (converged: below "
        f"{GRADIENT_TOL:.0e}); its estimates are early-stopped, not maximum likelihood "
        "(docs/fitting.md, 'Training')"
    )


@dataclass
class Stage:
    """How one optimizer stage went: its name, the optimizer iterations it ran, why it
    stopped (``patience``, ``schedule``, ``converged``, ``stalled``, ``iterations``,
    ``not finite``)
    and the best validation NLL (bits per read)."""

    name: str
    iterations: int
    stopped: str
    best_val_nll: float

    def as_dict(self) -> dict:
        return {
            "stage": self.name,
            "iterations": self.iterations,
            "stopped": self.stopped,
            "best_val_nll": self.best_val_nll,
        }


def run_stage(
    joint: Joint,
    optimizer,
    batches: Iterable,
    validate: Callable[[], dict],
    *,
    trained: nn.Module | None = None,
    comm: Comm | None = None,
    entropy: float = float("nan"),
    eval_every: int = 10,
    patience: int = 6,
    min_delta: float = 1e-5,
    patience_after: int = 0,
    max_iterations: int | None = None,
    before_step: Callable[[int], None] | None = None,
    validate_first: bool = False,
    on_error: str = "raise",
    history: list | None = None,
    start: int = 0,
    progress: tuple[bool, int] = (False, 0),
) -> Stage:
    """Run ``optimizer`` over ``batches`` and leave ``joint`` in its best validated state.

    Every ``eval_every`` optimizer steps (and at the last) ``validate()`` gives the
    validation NLL; an improvement of at least ``min_delta`` bits per read keeps a
    snapshot, and after ``patience`` checks without one past step ``patience_after`` the
    stage stops. ``trained`` is what the loss is computed through (the joint model, or it
    wrapped for DistributedDataParallel); ``before_step(step)`` runs before each step.
    ``validate_first`` scores the starting state, so a stage can only improve on it. A
    non-finite loss raises (``on_error="raise"``) or ends the stage. One history row per
    check: ``step`` (counted from ``start``), ``train_nll`` (mean over the steps since the
    previous check), ``val_nll``, their I_var, ``stage`` and ``epoch`` for minibatches.
    """
    comm = comm or Comm()
    trained = trained if trained is not None else joint
    history = history if history is not None else []
    show, total = progress
    bar = _bar(show and comm.rank == 0, total, optimizer.name)
    best_val, best = math.inf, None
    if validate_first:
        best_val, best = validate()["nll"], snapshot(joint)
    since, done, step, stopped = 0, 0, 0, "schedule"
    run_loss = run_weight = 0.0
    device = next(joint.parameters()).device
    for batch in batches:
        step += 1
        if before_step is not None:
            before_step(step)
        trained.train()

        def closure(batch=batch):
            optimizer.opt.zero_grad(set_to_none=True)
            if batch.parts is not None:
                return _chunked_loss(trained, batch, comm, optimizer.opt)
            loss = -trained(batch.x, batch.obs).sum() / batch.norm
            if torch.isfinite(loss):
                loss.backward()
            return loss

        loss, ran = optimizer.step(closure)
        done += ran
        if not torch.isfinite(loss):
            if on_error == "raise":
                bar.close()
                raise BpmError(
                    f"the fit diverged at step {start + done} (loss {float(loss)}); "
                    "try a smaller learning rate (--lr) or other initial values"
                )
            stopped = "not finite"
            break
        run_loss += float(loss.detach()) * batch.norm
        if batch.parts is None:
            run_weight += float(joint.measurement.weight(batch.obs).sum())
        else:  # already every process's: counted once per process, as the loss is
            run_weight += batch.norm
        bar.update(ran)
        last = max_iterations is not None and done >= max_iterations
        if step % eval_every == 0 or last or optimizer.converged:
            s, w = comm.sum([run_loss, run_weight], device)
            run_loss = run_weight = 0.0
            val = validate()
            train_nll = s / max(w, 1e-12) / LOG2
            row = {
                "step": start + done,
                "train_nll": train_nll,
                "val_nll": val["nll"],
                "train_I_var_bits": entropy - train_nll,
                "val_I_var_bits": val["I_var_bits"],
                "stage": optimizer.name,
            }
            if batch.epoch is not None:
                row["epoch"] = batch.epoch
            history.append(row)
            bar.set_postfix(
                train=f"{train_nll:.4f}",
                val=f"{val['nll']:.4f}",
                I_var=f"{val['I_var_bits']:.3f} bits",
            )
            if not math.isfinite(val["nll"]):
                stopped = "not finite"
                break
            if val["nll"] < best_val - min_delta:
                best_val, best, since = val["nll"], snapshot(joint), 0
            elif step > patience_after:
                since += 1
                if since >= patience:
                    stopped = "patience"
                    break
        if optimizer.converged:
            stopped = "stalled" if getattr(optimizer, "stalled", False) else "converged"
            break
        if last:
            stopped = "iterations"
            break
    bar.close()
    if best is not None:
        joint.load_state_dict(best)
    return Stage(optimizer.name, done, stopped, best_val)


def _chunked_loss(trained, batch, comm: Comm, opt) -> torch.Tensor:
    """The normalized loss of a batch read in parts, gradients accumulated part by part
    and summed over the processes (loss too): the same step on every process."""
    total = 0.0
    for x, obs in batch.parts():
        part = -trained(x, obs).sum() / batch.norm
        if torch.isfinite(part):
            part.backward()
        total += float(part.detach())
    params = [p for group in opt.param_groups for p in group["params"]]
    device = params[0].device
    comm.sum_gradients(params)
    (total,) = comm.sum([total], device)
    return torch.tensor(total, dtype=params[0].dtype, device=device)


def _bar(show: bool, total: int, name: str):
    from tqdm.auto import tqdm

    return tqdm(total=total or None, disable=not show, file=sys.stderr, desc=name, leave=False)
