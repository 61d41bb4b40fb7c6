"""What every part of code generation reads: the model, its derivation, the writer.

One :class:`Context` is built per generated module and handed to each emitter
(header, ``__init__``, forward pass, kinetic parts), so they share the slots,
the symbols and the layout conventions without passing them one by one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import sympy

from . import ir, symbolic
from .codegen_layout import ParameterSlot, parameter_slots
from .codegen_writer import Writer
from .module_names import safe_class_name


def class_name(model: ir.Model) -> str:
    """The model's name as a Python class name (:func:`.module_names.safe_class_name`)."""
    return safe_class_name(model.name)


@dataclass
class Context:
    """One module being generated: its model, closed forms, slots and writer.

    ``trees`` are the King-Altman trees into each state (indices into the
    transitions) for a kinetic model within the tree budget; ``None`` selects the
    linear solve (and always for a thermodynamic model).
    """

    model: ir.Model
    derivation: symbolic.Derivation | None
    source_name: str
    trees: dict[str, tuple[tuple[int, ...], ...]] | None = None
    w: Writer = field(default_factory=Writer)

    def __post_init__(self) -> None:
        self.slots: list[ParameterSlot] = parameter_slots(self.model)
        self.cls = class_name(self.model)
        self.seq = self.model.sequence
        self.energy_names = tuple(e.name for e in self.model.energies)

    @property
    def T(self) -> str:
        """Transpose between the [N, ...] interface and the rows-inside layout."""
        return ".T" if self.seq else ""

    @property
    def column(self) -> str:
        """Per-state constants get a trailing axis to broadcast over sequences."""
        return ".unsqueeze(-1)" if self.seq else ""

    @property
    def arg(self) -> str:
        """The sequence argument of the public methods (none without a sequence)."""
        return ", x" if self.seq else ""

    @functools.cached_property
    def syms(self) -> dict[str, sympy.Symbol]:
        """One sympy symbol per energy and parameter."""
        return symbolic.symbols_for(self.model)

    def slot(self, key: str) -> ParameterSlot:
        """The slot ``get_params`` names ``key``."""
        return next(s for s in self.slots if s.key == key)

    def rate_text(self, t: ir.Transition) -> str:
        """A transition's rate as written in the model file."""
        return sympy.sstr(symbolic.rate_to_sympy(t.rate, self.syms), order="none")
