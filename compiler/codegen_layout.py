"""The parameter layout: how each name of the ``.bpm`` file is stored in the module.

Every energy and parameter becomes one or more slots (a site energy has its
table, its offset and a neighbor or pairwise table), each with the module
attribute that holds it, the transform between stored and natural values, what
kind of value it is, whether it is learned, and the value the file wrote. The
generated module carries them as its public ``parameter_layout`` (docs/module.md),
which its ``get_params``/``set_params`` read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import ir
from .codegen_writer import Writer, float_literal
from .errors import BpmModelError


@dataclass(frozen=True)
class ParameterSlot:
    """One entry of ``parameter_layout``: a name ``get_params`` returns and how it is stored.

    ``transform`` is ``identity``, ``lower`` (stored ``log(value - bound)``) or ``upper``
    (stored ``log(bound - value)``); ``kind`` is ``matrix``, ``offset``, ``neighbor`` or
    ``pairwise`` (the parts of a site energy), ``energy`` (a scalar energy) or ``param``;
    ``init`` is the value the file wrote (an ``init`` or a fixed value; energies in kT)
    or ``None`` where it wrote none.
    """

    key: str  # the name get_params uses ("G_C", "G_C.offset", "t_sat")
    attribute: str
    transform: str
    bound: float | None
    kind: str
    learned: bool
    init: float | None

    def fields(self) -> dict[str, object]:
        """The slot as the generated module writes it (every field but ``key``)."""
        return {
            "attribute": self.attribute,
            "transform": self.transform,
            "bound": self.bound,
            "kind": self.kind,
            "learned": self.learned,
            "init": self.init,
        }


def parameter_slots(model: ir.Model) -> list[ParameterSlot]:
    """The slots of ``model`` in ``get_params()`` order: energies, then parameters.

    Raises :class:`BpmModelError` when two names would share a module attribute.
    """
    out: list[ParameterSlot] = []
    for e in model.energies:
        if isinstance(e, ir.SiteEnergy):
            base = f"energy_{e.name}"
            out.append(ParameterSlot(e.name, base, "identity", None, "matrix", True, None))
            out.append(
                ParameterSlot(
                    f"{e.name}.offset", f"{base}_offset", "identity", None, "offset", True, None
                )
            )
            if e.kind != "matrix":
                key, attr = f"{e.name}.{e.kind}", f"{base}_{e.kind}"
                out.append(ParameterSlot(key, attr, "identity", None, e.kind, True, None))
        else:
            init = e.value if e.fixed else (e.init if e.init_written else None)
            out.append(
                ParameterSlot(
                    e.name, f"energy_{e.name}", "identity", None, "energy", not e.fixed, init
                )
            )
    for p in model.params:
        out.append(_param_slot(p))
    attrs = [s.attribute for s in out]
    if len(set(attrs)) != len(attrs):
        dup = sorted({a for a in attrs if attrs.count(a) > 1})
        raise BpmModelError(f"declared names collide in the generated module: {', '.join(dup)}")
    return out


def _param_slot(p: ir.Param) -> ParameterSlot:
    if p.fixed:
        return ParameterSlot(p.name, f"param_{p.name}", "identity", None, "param", False, p.value)
    init = p.init if p.init_written else None
    if p.lower is not None:
        return ParameterSlot(p.name, f"param_{p.name}_raw", "lower", p.lower, "param", True, init)
    if p.upper is not None:
        return ParameterSlot(p.name, f"param_{p.name}_raw", "upper", p.upper, "param", True, init)
    return ParameterSlot(p.name, f"param_{p.name}", "identity", None, "param", True, init)


def write_layout(w: Writer, slots: list[ParameterSlot]) -> None:
    """The ``parameter_layout`` class attribute: one dict per get_params() name."""
    w.line("# get_params() name: its attribute and transform, what it is, the file's value")
    w.line("parameter_layout = {")
    with w.indent():
        for s in slots:
            items = [f"{k!r}: {_literal(v)}" for k, v in s.fields().items()]
            head = f"{s.key!r}: {{"
            w.line(f"{head}{', '.join(items[:3])},")
            w.line(f"{' ' * len(head)}{', '.join(items[3:])}}},")
    w.line("}")


def _literal(value: object) -> str:
    return float_literal(value) if isinstance(value, float) else repr(value)


def natural_code(s: ParameterSlot) -> str:
    """Code for a slot's natural value from its stored attribute."""
    if s.transform == "lower":
        raw = f"torch.exp(self.{s.attribute})"
        return raw if s.bound == 0 else f"{float_literal(s.bound)} + {raw}"
    if s.transform == "upper":
        return f"{float_literal(s.bound)} - torch.exp(self.{s.attribute})"
    return f"self.{s.attribute}"


def log_code(s: ParameterSlot) -> str:
    """Code for the log of a positive parameter, stable for its stored form."""
    if s.transform == "lower" and s.bound == 0:
        return f"self.{s.attribute}"
    if s.transform == "lower":
        log_bound = float_literal(math.log(s.bound))
        return (
            f"torch.logaddexp(self.{s.attribute}, torch.full_like(self.{s.attribute}, {log_bound}))"
        )
    return f"torch.log(self.{s.attribute})"
