"""The checker's declarations: temperature, sequence, energies and parameters.

:class:`DeclarationChecks` is one part of the checker (:mod:`bpm.compiler.check`):
it turns declarations into IR, converting kcal/mol to kT and checking fixed and
initial values against bounds, and records each declared name.
"""

from __future__ import annotations

import math
from collections import Counter

from . import ast, ir
from .check_numbers import too_large
from .errors import BpmModelError, BpmNameError, did_you_mean
from .module_names import RESERVED_ATTRIBUTES, declared_attributes

SITE_KINDS = ("matrix", "neighbor", "pairwise")
"""The site-energy models a sequence energy can use."""

RESERVED = {"P", "exp", "log", "sqrt", "revcomp", *SITE_KINDS}
"""Words that cannot name an energy or a parameter."""


MIN_KELVIN, MAX_KELVIN = 1e-3, 1e6
"""The temperatures a model may declare (kT must stay a usable number)."""


class DeclarationChecks:
    """Declarations to IR; mixed into the checker, which provides ``error`` and ``declared``."""

    def temperature(self, decls: list[ast.TemperatureDecl]) -> float:
        for extra in decls[1:]:
            self.error(BpmModelError, "the temperature is set twice", extra.span)
        if not decls:
            return ir.DEFAULT_TEMPERATURE
        d = decls[0]
        kelvin = d.value + 273.15 if d.unit == "C" else d.value
        if not kelvin > 0:
            self.error(
                BpmModelError, f"temperature {kelvin:g} K is not above absolute zero", d.span
            )
            return ir.DEFAULT_TEMPERATURE
        if not MIN_KELVIN <= kelvin <= MAX_KELVIN:
            self.error(
                BpmModelError,
                f"temperature {kelvin:g} K is outside {MIN_KELVIN:g} K to {MAX_KELVIN:g} K",
                d.span,
                note="energies in kcal/mol are divided by kT, which must be a usable number",
            )
            return ir.DEFAULT_TEMPERATURE
        return kelvin

    def sequence(self, decls: list[ast.SequenceDecl]) -> ir.SequenceDecl | None:
        for extra in decls[1:]:
            self.error(
                BpmModelError,
                "a model reads one sequence",
                extra.span,
                note=f"'{decls[0].name.name}' is declared first",
            )
        if not decls:
            return None
        d = decls[0]
        self.sequence_name = d.name.name
        if d.custom:
            duplicated = sorted(ch for ch, n in Counter(d.alphabet).items() if n > 1)
            if not d.alphabet or duplicated:
                self.error(
                    BpmModelError,
                    "a custom alphabet needs distinct letters",
                    d.span,
                    note=f"repeated: {', '.join(duplicated)}" if duplicated else None,
                )
                return None
            alphabet = ir.Alphabet("custom", d.alphabet)
        elif d.alphabet in ir.ALPHABETS:
            alphabet = ir.ALPHABETS[d.alphabet]
        else:
            hint = did_you_mean(d.alphabet, ir.ALPHABETS)
            self.error(
                BpmNameError,
                f"unknown alphabet '{d.alphabet}'{hint}",
                d.span,
                note='use dna, rna, protein, or the letters in quotes, like "01"',
            )
            return None
        if d.length < 1:
            self.error(BpmModelError, "a sequence needs a length of at least 1", d.span)
            return None
        numbering = self.numbering(d.numbering, d.name.name, d.length)
        return ir.SequenceDecl(d.name.name, alphabet, d.length, numbering, span=d.span)

    def numbering(self, n: ast.Numbering | None, name: str, length: int) -> ir.Numbering | None:
        """``positions A to B [relative to R]``: A and B not 0, counting up, numbering
        exactly ``length`` letters (0 skipped)."""
        if n is None:
            return None
        zero = [s for v, s in ((n.first, n.first_span), (n.last, n.last_span)) if v == 0]
        for span in zero:
            self.error(BpmModelError, "there is no position 0", span,
                       note="positions run ..., -2, -1, +1, +2, ...: the letter at the "
                       "reference is +1, the one before it -1")  # fmt: skip
        if zero:
            return None
        if n.last < n.first:
            self.error(BpmModelError, f"positions {n.first} to {n.last} count down", n.span,
                       note="give the number of the first letter, then of the last")  # fmt: skip
            return None
        if n.reference is not None and not n.reference.strip():
            self.error(BpmModelError, "an empty reference", n.span,
                       note="name what the positions count from, like TSS")  # fmt: skip
            return None
        found = ir.Numbering(n.first, n.last, n.reference)
        if found.width != length:
            fits = ir.Numbering.starting(n.first, length)
            message = f"positions {n.first} to {n.last} number {found.width} letters, "
            note = f"{length} letters from {n.first} are {fits.text()} (no 0)"
            self.error(BpmModelError, message + f"but '{name}' has {length}", n.span, note=note)
            return None
        return found

    def declare(self, name: ast.Name) -> bool:
        """Record an energy or parameter name; False (and an error) if repeated or reserved."""
        if name.name in self.declared:
            line = self.declared[name.name].line
            self.error(BpmNameError, f"'{name.name}' is already declared (line {line})", name.span)
            return False
        self.declared[name.name] = name.span
        if name.name in RESERVED:
            self.error(BpmNameError, f"'{name.name}' is a reserved word", name.span)
            return False
        return True

    def energy(self, d: ast.EnergyDecl, sequence, kT: float) -> ir.Energy | None:
        if not self.declare(d.name):
            return None
        if d.site is None:
            fixed = None if d.fixed is None else self.in_kT(d.fixed, kT)
            init = 0.0 if d.init is None else self.in_kT(d.init, kT)
            value = init if fixed is None else fixed
            if not self.number(value, d.span, f"energy '{d.name.name}' of"):
                return None
            return ir.ScalarEnergy(
                d.name.name,
                fixed,
                fixed if fixed is not None else init,
                span=d.span,
                init_written=d.init is not None,
            )
        site = d.site
        ok = True
        if site.kind.name not in SITE_KINDS:
            hint = did_you_mean(site.kind.name, SITE_KINDS)
            self.error(
                BpmNameError,
                f"unknown energy model '{site.kind.name}'{hint}",
                site.kind.span,
                note="use matrix, neighbor or pairwise",
            )
            ok = False
        if sequence is None:
            if site.sequence.name == getattr(self, "sequence_name", None):
                return None  # its declaration is in error, already reported
            self.error(
                BpmNameError,
                f"unknown sequence '{site.sequence.name}'",
                site.sequence.span,
                note="declare it first, like: sequence x: dna[75]",
            )
            return None
        if site.sequence.name != sequence.name:
            hint = did_you_mean(site.sequence.name, [sequence.name])
            self.error(
                BpmNameError, f"unknown sequence '{site.sequence.name}'{hint}", site.sequence.span
            )
            ok = False
        if site.start >= site.stop:
            self.error(
                BpmModelError,
                f"empty slice [{site.start}:{site.stop}]",
                site.span,
                note="slices are 0-based and half-open: x[1:27] holds positions 1 to 26",
            )
            ok = False
        elif site.stop > sequence.length:
            self.error(
                BpmModelError,
                f"slice [{site.start}:{site.stop}] runs past the end of "
                f"'{sequence.name}' (length {sequence.length})",
                site.span,
            )
            ok = False
        if site.revcomp and sequence.alphabet.complement is None:
            self.error(
                BpmModelError,
                f"revcomp needs a nucleic-acid alphabet, not {sequence.alphabet.name}",
                site.span,
            )
            ok = False
        if site.kind.name == "neighbor" and site.stop - site.start < 2 and ok:
            self.error(
                BpmModelError, "a neighbor model needs a site of two or more positions", site.span
            )
            ok = False
        if d.fixed is not None or d.init is not None:
            ok = False  # the grammar allows neither; kept for safety
        if not ok:
            return None
        return ir.SiteEnergy(
            d.name.name, site.kind.name, site.start, site.stop, site.revcomp, span=d.span
        )

    def in_kT(self, q: ast.Quantity, kT: float) -> float:
        return q.value / kT if q.unit == "kcal/mol" else q.value

    def param(self, d: ast.ParamDecl) -> ir.Param | None:
        if not self.declare(d.name):
            return None
        lower = upper = None
        if d.bound is not None:
            lower, upper = (d.bound.value, None) if d.bound.op == ">" else (None, d.bound.value)
        written = [v for v in (d.fixed, d.init, d.bound and d.bound.value) if v is not None]
        if not all(self.number(v, d.span, f"'{d.name.name}': the value") for v in written):
            return None
        if d.fixed is not None:
            value = d.fixed
            if not within_bound(value, lower, upper):
                self.error(
                    BpmModelError,
                    f"fixed value {value:g} of '{d.name.name}' violates its constraint "
                    f"{d.bound.op} {d.bound.value:g}",
                    d.span,
                )
                return None
            return ir.Param(d.name.name, lower, upper, value, value, span=d.span)
        if d.init is not None:
            init = d.init
            if not within_bound(init, lower, upper):
                self.error(
                    BpmModelError,
                    f"initial value {init:g} of '{d.name.name}' violates its constraint "
                    f"{d.bound.op} {d.bound.value:g}",
                    d.span,
                )
                return None
        else:  # a neutral start: 1 for '> 0', else a step away from the bound
            init = default_init(lower, upper)
        return ir.Param(
            d.name.name, lower, upper, None, init, span=d.span, init_written=d.init is not None
        )

    def collisions(self, energies: tuple[ir.Energy, ...], params: tuple[ir.Param, ...]) -> None:
        """An error for each declaration whose module attribute is taken
        (:mod:`.module_names`): by the module itself or by an earlier declaration."""
        owner: dict[str, str] = {}
        for decl in (*energies, *params):
            for attribute in declared_attributes(decl):
                if attribute in RESERVED_ATTRIBUTES:
                    self.error(
                        BpmNameError,
                        f"'{decl.name}' cannot be used as a name: the generated module "
                        f"keeps '{attribute}' for itself",
                        decl.span,
                    )
                elif attribute in owner:
                    self.error(
                        BpmNameError,
                        f"'{decl.name}' would be stored as '{attribute}', which collides with "
                        f"'{owner[attribute]}': rename one of them",
                        decl.span,
                    )
                else:
                    owner[attribute] = decl.name

    def number(self, value: float, span, what: str) -> bool:
        """False (and an error) for a stored value float32 cannot hold."""
        if too_large(value):
            self.error(
                BpmModelError,
                f"{what} {value:g} is too large for the module (float32 holds at most 3.4e38)",
                span,
            )
            return False
        return True


def default_init(lower: float | None, upper: float | None) -> float:
    """Where a learned parameter starts without ``init``: strictly inside its bound.

    >>> default_init(0.0, None), default_init(None, 100.0), default_init(1e300, None)
    (1.0, 0.0, 2e+300)
    """
    if lower is None and upper is None:
        return 0.0
    bound, direction = (lower, 1.0) if lower is not None else (upper, -1.0)
    step = max(1.0, abs(bound))
    value = bound + direction * step
    return value if math.isfinite(value) else math.nextafter(bound, direction * math.inf)


def within_bound(value: float, lower: float | None, upper: float | None) -> bool:
    """True when ``value`` is strictly inside the bound (``None``: no bound that side)."""
    return (lower is None or value > lower) and (upper is None or value < upper)
