"""The generated ``__init__``: parameters and buffers for every declaration.

Learned values are ``nn.Parameter`` initialized from the model file, fixed values
buffers; site energies get their flattened-table index buffers; the thermodynamic
state-energy matrix (or the kinetic rate buffers, from :mod:`.codegen_kinetic`)
closes it.
"""

from __future__ import annotations

import math

from . import ir
from .codegen_context import Context
from .codegen_kinetic import write_kinetic_buffers
from .codegen_layout import ParameterSlot
from .codegen_writer import float_literal as _f
from .errors import BpmModelError


def write_init(c: Context) -> None:
    """``def __init__(self)`` with every parameter and buffer of the module."""
    w, m = c.w, c.model
    w.line("def __init__(self):")
    with w.indent():
        w.line("super().__init__()")
        A = len(c.seq.alphabet.letters) if c.seq else 0
        for e in m.energies:
            if isinstance(e, ir.SiteEnergy):
                _site(c, e, A)
            elif e.fixed:
                w.line(f"# {e.name} = {_f(e.value)} kT, fixed")
                w.line(f'self.register_buffer("energy_{e.name}", torch.tensor({_f(e.value)}))')
            else:
                w.line(f"# {e.name}: learned energy in kT")
                w.line(f"self.energy_{e.name} = torch.nn.Parameter(torch.tensor({_f(e.init)}))")
        for p in m.params:
            _param(c, p, c.slot(p.name))
        if any(e.revcomp for e in m.site_energies):
            comp = c.seq.alphabet.complement
            if comp is None:
                raise BpmModelError(
                    f"alphabet {c.seq.alphabet.name} has no complement for revcomp sites"
                )
            w.line("# the code of each letter's complement, for sites read on the other strand")
            w.line(
                f'self.register_buffer("complement", torch.tensor({list(comp)!r}), '
                "persistent=False)"
            )
        if m.kind == "thermodynamic":
            _state_energies(c)
        else:
            write_kinetic_buffers(c)
    w.line()


def _site(c: Context, e: ir.SiteEnergy, A: int) -> None:
    w, width = c.w, e.width
    strand = ", reverse complement" if e.revcomp else ""
    w.line(f"# {e.name} = {e.kind}(x[{e.start}:{e.stop}]{strand}): learned, in kT")
    w.line(f"self.energy_{e.name} = torch.nn.Parameter(torch.zeros({width}, {A}))")
    w.line(f"self.energy_{e.name}_offset = torch.nn.Parameter(torch.zeros(()))")
    if e.kind == "neighbor":
        w.line(
            f"self.energy_{e.name}_neighbor = "
            f"torch.nn.Parameter(torch.zeros({width - 1}, {A}, {A}))"
        )
    elif e.kind == "pairwise":
        w.line(
            f"self.energy_{e.name}_pairwise = "
            f"torch.nn.Parameter(torch.zeros({width}, {width}, {A}, {A}))"
        )
        w.line(f"i, j = torch.triu_indices({width}, {width}, offset=1)")
        w.line(f'self.register_buffer("site_{e.name}_i", i, persistent=False)')
        w.line(f'self.register_buffer("site_{e.name}_j", j, persistent=False)')
        w.line(f'self.register_buffer("site_{e.name}_rows", i * {width} + j, persistent=False)')


def _param(c: Context, p: ir.Param, s: ParameterSlot) -> None:
    w = c.w
    if p.fixed:
        w.line(f"# {p.name} = {_f(p.value)}, fixed")
        w.line(f'self.register_buffer("{s.attribute}", torch.tensor({_f(p.value)}))')
    elif s.transform == "lower":
        shifted = p.name if p.lower == 0 else f"{p.name} - {_f(p.lower)}"
        w.line(f"# {p.name} > {_f(p.lower)}, stored as log({shifted})")
        raw = _f(math.log(p.init - p.lower))
        w.line(f"self.{s.attribute} = torch.nn.Parameter(torch.tensor({raw}))")
    elif s.transform == "upper":
        w.line(f"# {p.name} < {_f(p.upper)}, stored as log({_f(p.upper)} - {p.name})")
        raw = _f(math.log(p.upper - p.init))
        w.line(f"self.{s.attribute} = torch.nn.Parameter(torch.tensor({raw}))")
    else:
        w.line(f"# {p.name}: learned, unbounded")
        w.line(f"self.{s.attribute} = torch.nn.Parameter(torch.tensor({_f(p.init)}))")


def _state_energies(c: Context) -> None:
    w, m = c.w, c.model
    coef = [[_f(s.energy.coefficient(n)) for n in c.energy_names] for s in m.thermo_states]
    w.line("# free energy of each state: G = state_energy @ energies + state_constant")
    w.line("self.register_buffer(")
    with w.indent():
        w.line('"state_energy",')
        w.line("torch.tensor([")
        with w.indent():
            for s, row in zip(m.thermo_states, coef, strict=True):
                w.line(f"[{', '.join(row)}],  # {s.name}")
        w.line(f"]).reshape({len(m.thermo_states)}, {len(c.energy_names)}),")
        w.line("persistent=False,")
    w.line(")")
    consts = ", ".join(_f(s.energy.constant) for s in m.thermo_states)
    w.line(
        f'self.register_buffer("state_constant", torch.tensor([{consts}]){c.column}, '
        "persistent=False)"
    )
