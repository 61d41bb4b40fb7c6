"""The intermediate representation: a checked model with every name resolved.

The IR is what the derivation stages read. It is made by :mod:`bpm.compiler.check`
from the AST, never by hand from text, and it holds only tuples and frozen
dataclasses, so it can be hashed, compared and dumped deterministically
(:func:`dump`). Every node keeps the :class:`Span` it came from.

This module holds the declarations, mechanisms and the model; the expressions, linear
forms and rates they contain are in :mod:`bpm.compiler.ir_expr`, the sequence (alphabet,
length, numbering) in :mod:`bpm.compiler.ir_sequence`, both re-exported here.

Energies are in units of kT throughout; ``Model.kT`` converts to kcal/mol.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

from .errors import Span
from .ir_expr import (
    Binary,
    Call,
    Expr,
    LinearForm,
    Num,
    Prob,
    Rate,
    Ref,
    Unary,
    format_expr,
    format_linear,
    shape_of,
)
from .ir_sequence import ALPHABETS, DNA, PROTEIN, RNA, Alphabet, Numbering, SequenceDecl

__all__ = [
    "ALPHABETS",
    "DEFAULT_TEMPERATURE",
    "DNA",
    "GAS_CONSTANT_KCAL",
    "PROTEIN",
    "RNA",
    "Alphabet",
    "Binary",
    "Call",
    "Energy",
    "Expr",
    "LinearForm",
    "Model",
    "Num",
    "Numbering",
    "Output",
    "Param",
    "Prob",
    "Rate",
    "Ref",
    "ScalarEnergy",
    "SequenceDecl",
    "SiteEnergy",
    "State",
    "Transition",
    "Unary",
    "dump",
    "format_expr",
    "format_linear",
    "format_model",
    "shape_of",
]

# -------------------------------------------------------------- declarations


@dataclass(frozen=True)
class SiteEnergy:
    """A sequence-dependent energy read from ``sequence[start:stop]`` (0-based, half-open).

    ``kind`` is ``matrix`` (additive: one value per position and letter, plus an
    offset), ``neighbor`` (additive plus one value per adjacent pair of positions
    and pair of letters) or ``pairwise`` (additive plus every pair of positions).
    With ``revcomp`` the site is read on the other strand: the reverse complement
    of the slice.
    """

    name: str
    kind: Literal["matrix", "neighbor", "pairwise"]
    start: int
    stop: int
    revcomp: bool
    span: Span = field(compare=False, kw_only=True)

    @property
    def width(self) -> int:
        return self.stop - self.start

    def __post_init__(self):
        if not 0 <= self.start < self.stop:
            raise ValueError(f"bad slice [{self.start}:{self.stop}]")


@dataclass(frozen=True)
class ScalarEnergy:
    """An energy that does not depend on the sequence: learned (``value is None``) or fixed."""

    name: str
    value: float | None
    init: float
    span: Span = field(compare=False, kw_only=True)
    #: True when the file wrote the ``init``; False when ``init`` is the default
    init_written: bool = field(default=False, compare=False, kw_only=True)

    @property
    def fixed(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class Param:
    """A scalar parameter, optionally bounded (``> lower`` or ``< upper``), fixed or learned."""

    name: str
    lower: float | None
    upper: float | None
    value: float | None
    init: float
    span: Span = field(compare=False, kw_only=True)
    #: True when the file wrote the ``init``; False when ``init`` is the default
    init_written: bool = field(default=False, compare=False, kw_only=True)

    def __post_init__(self):
        if self.lower is not None and self.upper is not None:
            raise ValueError("a parameter has at most one bound")
        for v in (self.init,) if self.value is None else (self.value, self.init):
            if self.lower is not None and not v > self.lower:
                raise ValueError(f"{self.name}: {v} violates > {self.lower}")
            if self.upper is not None and not v < self.upper:
                raise ValueError(f"{self.name}: {v} violates < {self.upper}")

    @property
    def fixed(self) -> bool:
        return self.value is not None

    @property
    def positive(self) -> bool:
        """True when the parameter can only be positive (a valid factor of a rate)."""
        if self.value is not None:
            return self.value > 0
        return self.lower is not None and self.lower >= 0


Energy = SiteEnergy | ScalarEnergy


# -------------------------------------------------------------------- mechanisms


@dataclass(frozen=True)
class State:
    """A state of a thermodynamic model: its free energy as an integer combination of energies."""

    name: str
    energy: LinearForm
    span: Span = field(compare=False, kw_only=True)

    def __post_init__(self):
        if any(c != int(c) for _, c in self.energy.terms):
            raise ValueError(f"state {self.name}: energy coefficients must be integers")


@dataclass(frozen=True)
class Transition:
    """A directed transition ``source -> target`` of a kinetic model."""

    source: str
    target: str
    rate: Rate
    span: Span = field(compare=False, kw_only=True)

    def __post_init__(self):
        if self.source == self.target:
            raise ValueError(f"self-loop on {self.source}")


@dataclass(frozen=True)
class Output:
    name: str
    expr: Expr
    span: Span = field(compare=False, kw_only=True)


@dataclass(frozen=True)
class Model:
    """A checked model.

    ``states`` lists every state name in declaration order (for a kinetic model,
    in order of first appearance in a transition). Exactly one of ``thermo_states``
    (thermodynamic) and ``transitions`` (kinetic) is non-empty.
    """

    name: str
    doc: str | None
    kind: Literal["thermodynamic", "kinetic"]
    sequence: SequenceDecl | None
    energies: tuple[Energy, ...]
    params: tuple[Param, ...]
    states: tuple[str, ...]
    thermo_states: tuple[State, ...]
    transitions: tuple[Transition, ...]
    outputs: tuple[Output, ...]
    temperature_kelvin: float
    span: Span = field(compare=False, kw_only=True)

    def __post_init__(self):
        if (self.kind == "thermodynamic") != bool(self.thermo_states):
            raise ValueError("a thermodynamic model has states and no transitions")
        if (self.kind == "kinetic") != bool(self.transitions):
            raise ValueError("a kinetic model has transitions")
        if len(set(self.states)) != len(self.states):
            raise ValueError("state names must be unique")
        names = [d.name for d in (*self.energies, *self.params)]
        if len(set(names)) != len(names):
            raise ValueError("declared names must be unique")
        if any(isinstance(e, SiteEnergy) for e in self.energies) and self.sequence is None:
            raise ValueError("sequence-dependent energies need a sequence")

    @property
    def kT(self) -> float:
        """One thermal unit in kcal/mol at the model's temperature."""
        return GAS_CONSTANT_KCAL * self.temperature_kelvin

    def energy(self, name: str) -> Energy:
        return next(e for e in self.energies if e.name == name)

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    @property
    def site_energies(self) -> tuple[SiteEnergy, ...]:
        return tuple(e for e in self.energies if isinstance(e, SiteEnergy))


GAS_CONSTANT_KCAL = 0.0019872043  # kcal / (mol K)
DEFAULT_TEMPERATURE = 310.15  # 37 degrees C; kT = 0.616 kcal/mol


# -------------------------------------------------------------------- dump


def dump(node: object, indent: int = 0) -> str:
    """A deterministic, indented text dump of an IR (or AST) tree, spans left out.

    >>> print(dump(LinearForm.of({"G_C": 1, "G_I": 1})))
    LinearForm
      terms: (('G_C', 1), ('G_I', 1))
      constant: 0.0
    """
    pad = "  " * indent
    if hasattr(node, "__dataclass_fields__"):
        lines = [type(node).__name__]
        for f in fields(node):  # type: ignore[arg-type]
            value = getattr(node, f.name)
            omitted = value is None and f.metadata.get("dump") == "unless None"
            if isinstance(value, Span) or omitted:
                continue
            if _is_tree(value):
                lines.append(f"{pad}  {f.name}:")
                lines.append(f"{pad}    " + dump(value, indent + 2))
            elif isinstance(value, tuple) and value and all(_is_tree(v) for v in value):
                lines.append(f"{pad}  {f.name}:")
                lines.extend(f"{pad}    - " + dump(v, indent + 3) for v in value)
            else:
                lines.append(f"{pad}  {f.name}: {value!r}")
        return "\n".join(lines)
    return repr(node)


def _is_tree(value: object) -> bool:
    return hasattr(value, "__dataclass_fields__") and not isinstance(value, Span)


# ------------------------------------------------------------- readable text


def site_numbers(model: Model, site: SiteEnergy) -> str:
    """``, positions -74 to -49``: a site's first and last letters as the file numbers
    them; empty for a sequence without ``positions``."""
    numbering = model.sequence.numbering if model.sequence is not None else None
    if numbering is None:
        return ""
    return f", positions {numbering.label(site.start)} to {numbering.label(site.stop - 1)}"


def format_model(model: Model) -> str:
    """The deterministic text dump of a checked model, used by ``--emit ir``."""
    lines = [f"model {model.name} ({model.kind})"]
    if model.doc:
        lines.append("  doc: " + model.doc.splitlines()[0] + (" ..." if "\n" in model.doc else ""))
    lines.append(f"  temperature: {model.temperature_kelvin:g} K (kT = {model.kT:.4f} kcal/mol)")
    if model.sequence is not None:
        s = model.sequence
        numbered = f", {s.numbering.text()}" if s.numbering is not None else ""
        lines.append(
            f"  sequence {s.name}: {s.alphabet.name} '{s.alphabet.letters}' length {s.length}"
            + numbered
        )
    for e in model.energies:
        if isinstance(e, SiteEnergy):
            where = f"{model.sequence.name}[{e.start}:{e.stop}]"
            where = f"revcomp({where})" if e.revcomp else where
            lines.append(f"  energy {e.name} = {e.kind}({where})  # width {e.width}"
                         + site_numbers(model, e))  # fmt: skip
        elif e.fixed:
            lines.append(f"  energy {e.name} = {e.value:g} kT (fixed)")
        else:
            lines.append(f"  energy {e.name} learned, init {e.init:g} kT")
    for p in model.params:
        bound = (
            f" > {p.lower:g}"
            if p.lower is not None
            else f" < {p.upper:g}"
            if p.upper is not None
            else ""
        )
        value = f" = {p.value:g} (fixed)" if p.fixed else f" learned, init {p.init:g}"
        lines.append(f"  param {p.name}{bound}{value}")
    for st in model.thermo_states:
        lines.append(f"  state {st.name}: G = {format_linear(st.energy)}")
    if model.kind == "kinetic":
        lines.append(f"  states: {', '.join(model.states)}")
    for t in model.transitions:
        lines.append(
            f"  transition {t.source} -> {t.target}: {format_expr(t.rate.expr)}"
            f"  [log rate = {format_linear(t.rate.log_rate)}]"
        )
    for o in model.outputs:
        lines.append(f"  output {o.name} = {format_expr(o.expr)}")
    return "\n".join(lines)
