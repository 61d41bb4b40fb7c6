"""Kinetic IR models built by hand, for the kinetic and graph tests (no front end needed)."""

from __future__ import annotations

from bpm.compiler import ir
from bpm.compiler.errors import Span

SPAN = Span(0, 0, 1, 1, 1, 1)


def ref(name: str, kind: str = "param") -> ir.Ref:
    return ir.Ref(name, kind, span=SPAN)  # type: ignore[arg-type]


def param(name: str, value: float | None = None) -> ir.Param:
    return ir.Param(name, 0.0, None, value, 1.0 if value is None else value, span=SPAN)


def rate_of(param_name: str, energy: str | None = None) -> ir.Rate:
    """``k`` or ``k * exp(-G)``."""
    expr: ir.Expr = ref(param_name)
    coefficients = {f"log:{param_name}": 1.0}
    if energy is not None:
        neg = ir.Unary("-", ref(energy, "energy"), span=SPAN)
        expr = ir.Binary("*", expr, ir.Call("exp", (neg,), span=SPAN), span=SPAN)
        coefficients[energy] = -1.0
    return ir.Rate(expr, ir.LinearForm.of(coefficients))


def kinetic_model(
    name: str,
    edges: list[tuple[str, str, str] | tuple[str, str, str, str]],
    outputs: tuple[ir.Output, ...] = (),
    energies: tuple[str, ...] = (),
) -> ir.Model:
    """A kinetic model from ``(source, target, param[, energy])`` rows; one parameter per name."""
    states: list[str] = []
    params: list[str] = []
    transitions = []
    for row in edges:
        source, target, p = row[:3]
        energy = row[3] if len(row) > 3 else None
        for s in (source, target):
            if s not in states:
                states.append(s)
        if p not in params:
            params.append(p)
        transitions.append(ir.Transition(source, target, rate_of(p, energy), span=SPAN))
    return ir.Model(
        name=name,
        doc=None,
        kind="kinetic",
        sequence=None,
        energies=tuple(ir.ScalarEnergy(e, None, 0.0, span=SPAN) for e in energies),
        params=tuple(param(p) for p in params),
        states=tuple(states),
        thermo_states=(),
        transitions=tuple(transitions),
        outputs=outputs,
        temperature_kelvin=ir.DEFAULT_TEMPERATURE,
        span=SPAN,
    )


def open_complex() -> ir.Model:
    """models/open_complex.bpm, with G_R a scalar energy (the sequence plays no part here)."""
    t = ir.Output(
        "t",
        ir.Binary("*", ref("k_init"), ir.Prob("open", span=SPAN), span=SPAN),
        span=SPAN,
    )
    return kinetic_model(
        "open_complex",
        [
            ("unbound", "closed", "k_on", "G_R"),
            ("closed", "unbound", "k_off"),
            ("closed", "open", "k_open"),
            ("open", "unbound", "k_init"),
        ],
        outputs=(t,),
        energies=("G_R",),
    )
