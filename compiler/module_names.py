"""The names a generated module gives each declaration, and the ones it keeps for itself.

Code generation stores energy ``G`` as ``self.energy_G`` (a site energy also as
``energy_G_offset`` and ``energy_G_<kind>``, with ``site_G_*`` index buffers) and
parameter ``k`` as ``self.param_k`` or ``self.param_k_raw``. The check rejects,
with a position, a declaration whose attribute is taken: by a member of the module
itself (``energy_names``, ``energy_table``, ``param_names``) or by another
declaration (``energy G_offset`` beside ``energy G = matrix(...)``).

>>> sorted(RESERVED_ATTRIBUTES)[:2]
['energy_names', 'energy_table']
"""

from __future__ import annotations

import builtins
import keyword

from . import ir

RESERVED_ATTRIBUTES = frozenset({"energy_names", "energy_table", "param_names", "site_energies"})
"""Members of every generated module that a declaration's attribute could spell."""

MODULE_GLOBALS = frozenset({"Model", "TRANSITIONS", "TREES", "annotations", "math", "torch"})
"""Module-level names of a generated module (besides its class)."""


def energy_attributes(energy: ir.Energy) -> tuple[str, ...]:
    """The module attributes holding ``energy``: its table (or value), offset and extra table."""
    base = f"energy_{energy.name}"
    if not isinstance(energy, ir.SiteEnergy):
        return (base,)
    extra = () if energy.kind == "matrix" else (f"{base}_{energy.kind}",)
    return (base, f"{base}_offset", *extra)


def param_attribute(param: ir.Param) -> str:
    """The attribute holding ``param``: bounded learned ones are stored raw (a log)."""
    raw = not param.fixed and (param.lower is not None or param.upper is not None)
    return f"param_{param.name}_raw" if raw else f"param_{param.name}"


def declared_attributes(decl: ir.Energy | ir.Param) -> tuple[str, ...]:
    """Every attribute of the generated module that holds ``decl``."""
    if isinstance(decl, ir.Param):
        return (param_attribute(decl),)
    return energy_attributes(decl)


def safe_class_name(name: str) -> str:
    """``name`` as the generated class's name: a trailing ``_`` where it would shadow a
    keyword, a builtin the module calls (``super``, ``len``, ``isinstance``) or a
    module-level name (``TREES``, ``torch``).

    >>> safe_class_name("lac"), safe_class_name("super"), safe_class_name("TREES")
    ('lac', 'super_', 'TREES_')
    """
    taken = keyword.iskeyword(name) or name in MODULE_GLOBALS or hasattr(builtins, name)
    return name + "_" if taken else name
