"""Thermodynamic derivation: Boltzmann weights, partition function, probabilities.

A state s with free energy G_s (an integer combination of energies, in kT) has
weight exp(-G_s); P(s) = exp(-G_s) / Z with Z the sum of all weights. Outputs are
the model's output expressions with every ``P(s)`` replaced by that ratio.

>>> # for models/lac.bpm: P(rnap) = exp(-G_R) / (1 + exp(-G_C) + exp(-G_R) + exp(-G_C - G_I - G_R))
"""

from __future__ import annotations

import sympy

from . import ir
from .symbolic import Derivation, linear_form_to_sympy, symbols_for, to_sympy


def state_energy(state: ir.State, symbols: dict[str, sympy.Symbol]) -> sympy.Expr:
    """G_s in kT as a sympy expression."""
    return linear_form_to_sympy(state.energy, symbols)


def derive(model: ir.Model) -> Derivation:
    """Closed forms of a thermodynamic model: weights exp(-G_s), Z, P(s) and the outputs."""
    if model.kind != "thermodynamic":
        raise ValueError(f"model {model.name} is {model.kind}, not thermodynamic")
    symbols = symbols_for(model)
    weights = {s.name: sympy.exp(-state_energy(s, symbols)) for s in model.thermo_states}
    Z = sympy.Add(*weights.values())
    P = {name: w / Z for name, w in weights.items()}
    outputs = {o.name: to_sympy(o.expr, symbols, P) for o in model.outputs}
    return Derivation(model, symbols, weights, Z, P, outputs)
