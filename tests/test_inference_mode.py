"""Eval mode is a generated module's inference mode (issue 15): ``float(model(x))`` works.

In eval mode the methods that take sequence codes record no gradients, so their results
turn into floats without torch's ``requires_grad`` warning (an error here: pytest runs
with warnings as errors); the numbers are those of train mode, which records them. The
runtime differentiates a module in either mode (``contract.recording``), and the module
of a :class:`~bpm.runtime.result.FitResult` is in eval mode.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bpm.compiler import load
from bpm.runtime import contract, hessian, load_fit
from bpm.runtime.measurement import OrdinalMeasurement

ROOT = Path(__file__).resolve().parent.parent
MODELS = sorted(p.stem for p in (ROOT / "models").glob("*.bpm"))
KINETIC = [n for n in MODELS if "kinetic {" in (ROOT / "models" / f"{n}.bpm").read_text()]
# Every model with its closed form, and every kinetic one solved numerically (budget 0).
CASES = [(n, None) for n in MODELS] + [(n, 0) for n in KINETIC]


def _inputs(module) -> tuple:
    """A few random sequences' codes (no argument for a model without a sequence)."""
    if module.sequence_length is None:
        return ()
    g = torch.Generator().manual_seed(0)
    return (torch.randint(0, len(module.alphabet), (5, module.sequence_length), generator=g),)


def _outputs(out) -> dict:
    return out if isinstance(out, dict) else {"": out}


@pytest.mark.parametrize(("name", "budget"), CASES, ids=[f"{n}-{b}" for n, b in CASES])
def test_eval_mode_outputs_turn_into_floats_with_the_same_numbers(name, budget):
    module = load(ROOT / "models" / f"{name}.bpm", tree_budget=budget)()
    args = _inputs(module)
    trained = {
        "out": _outputs(module(*args)),
        "P": module.P(*args),
        "energies": module.energies(*args),
        "table": module.energy_table(*args),
    }
    assert any(t.requires_grad for t in trained["out"].values())  # train mode records
    module.eval()
    inferred = {
        "out": _outputs(module(*args)),
        "P": module.P(*args),
        "energies": module.energies(*args),
        "table": module.energy_table(*args),
    }
    for key in ("out", "energies"):
        for label, value in inferred[key].items():
            assert not value.requires_grad, (key, label)
            assert torch.equal(value, trained[key][label].detach()), (key, label)
            float(value.reshape(-1)[0])  # no requires_grad warning
    for key in ("P", "table"):
        assert not inferred[key].requires_grad
        assert torch.equal(inferred[key], trained[key].detach())
    if args:
        one = _outputs(module(args[0][:1]))
        assert all(isinstance(float(value), float) for value in one.values())
    module.train()
    assert any(t.requires_grad for t in _outputs(module(*args)).values())


def test_eval_mode_under_no_grad_and_enable_grad():
    """Train mode under ``no_grad`` records nothing, as any module; eval mode records
    nothing even under ``enable_grad``: the mode decides, not the ambient setting."""
    module = load(ROOT / "models" / "lac.bpm")()
    (x,) = _inputs(module)
    with torch.no_grad():
        assert not module(x).requires_grad
    module.eval()
    with torch.enable_grad():
        assert not module(x).requires_grad


def test_the_runtime_differentiates_a_module_in_eval_mode():
    """Gradient and Hessian of an eval-mode module equal those of a train-mode one (not
    zeros where the module recorded nothing), and its mode is left as it was."""
    cls = load(ROOT / "models" / "simple_repression.bpm")
    module = cls().double()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    measurement = OrdinalMeasurement(3, hidden=0, floor=0.0).double()
    (x,) = _inputs(module)
    counts = torch.randint(0, 5, (len(x), 3), generator=g).double()
    data = (x.numpy(), counts.numpy())
    grad = hessian.gradient(module, measurement, data)
    H = hessian.hessian(module, measurement, data)[0]
    assert np.abs(grad).max() > 0
    module.eval()
    np.testing.assert_allclose(hessian.gradient(module, measurement, data), grad, rtol=1e-12)
    np.testing.assert_allclose(hessian.hessian(module, measurement, data)[0], H, rtol=1e-10)
    assert not module.training and all(not m.training for m in module.modules())


def test_a_loaded_fit_predicts_floats():
    result = load_fit(ROOT / "tests" / "data" / "fit_v1")
    assert not result.module.training and not result.measurement.training
    x = result.module.encode([result.module.alphabet[0] * result.module.sequence_length])
    t = contract.select_output(result.module(x), result.output)
    assert float(t) == pytest.approx(float(result.t(x)))
