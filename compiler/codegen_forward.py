"""The forward pass of a generated module: energies, probabilities, outputs.

``energy_table(x)`` gathers the site energies from their tables along one row of
codes per position and stacks every energy; ``probabilities(E)`` is ``softmax(-G)``
(thermodynamic) or the kinetic steady state (:mod:`.codegen_kinetic`);
``outputs(E, P)`` prints each output's expression with shared subexpressions named
(``sympy.cse``).

The methods that take sequence codes (``energy_table``, ``energies``, ``P``,
``forward``) record gradients in train mode (a new module's) and none in eval mode,
the module's inference mode: there ``float(model(x))`` needs no ``detach()``. The
numbers are the same in both; ``probabilities(E)`` and ``outputs(E, P)`` always record.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sympy

from . import ir, symbolic
from .codegen_context import Context
from .codegen_kinetic import write_kinetic_probabilities, write_log_rates
from .codegen_layout import natural_code
from .codegen_printer import ModulePrinter
from .codegen_writer import doc_expr
from .errors import BpmModelError

RECORDING = "with torch.set_grad_enabled(self.training and torch.is_grad_enabled()):"
"""The first line of a method body that records gradients in train mode only."""


@contextlib.contextmanager
def recording(c: Context) -> Iterator[None]:
    """The lines written inside run under :data:`RECORDING`, one level deeper."""
    c.w.line(RECORDING)
    with c.w.indent():
        yield


def write_energy_methods(c: Context) -> None:
    """``energy_table`` and ``energies``."""
    w, m, arg = c.w, c.model, c.arg
    shape = "[N, n_energies]" if c.seq else "[n_energies]"
    w.line(f"def energy_table(self{arg}):")
    with w.indent():
        doc = f"Every energy in kT, columns in energy_names order: Tensor{shape}."
        if c.seq:
            doc += "\n\nA transposed view: inside, energies are rows and sequences columns."
        w.docstring(doc)
        if not m.energies:
            lead = "(x.shape[0], 0)" if c.seq else "(0,)"
            ref = "state_constant" if m.kind == "thermodynamic" else "rate_constant"
            w.line(f"return self.{ref}.new_zeros({lead})")
        else:
            with recording(c):
                _energy_table_body(c)
    w.line()
    w.line(f"def energies(self{arg}):")
    with w.indent():
        out = "Tensor[N]" if c.seq else "0-d Tensor"
        w.docstring(f"Every declared energy in kT: dict of {out}, scalars broadcast.")
        with recording(c):
            w.line(f"table = self.energy_table({arg[2:]})")
            w.line("return {name: table[..., k] for k, name in enumerate(self.energy_names)}")
    w.line()


def _energy_table_body(c: Context) -> None:
    """Each energy's column (site energies by lookup, scalars broadcast), stacked."""
    w = c.w
    if c.seq:
        w.line("n = x.shape[0]")
    if c.model.site_energies:
        w.line("# one row of codes per position, sequences along it: [L, N]")
        w.line("# (no copy for codes laid out so, as a fit lays out its own)")
        w.line("rows = x.T.contiguous()")
    cols = []
    for e in c.model.energies:
        cols.append(f"e_{e.name}")
        if isinstance(e, ir.SiteEnergy):
            _site_code(c, e)
        elif c.seq:
            w.line(f"e_{e.name} = self.energy_{e.name}.expand(n)")
        else:
            w.line(f"e_{e.name} = self.energy_{e.name}")
    w.line(f"return torch.stack([{', '.join(cols)}]){c.T}")


def _site_code(c: Context, e: ir.SiteEnergy) -> None:
    """A site energy: each table gathered along the rows of its positions' codes
    (``out[i, n] = table[i, codes[i, n]]``), summed over positions, plus the offset."""
    w = c.w
    A = len(c.seq.alphabet.letters)
    if e.revcomp:
        w.line(f"codes = self.complement[rows[{e.start}:{e.stop}].flip(0)]  # other strand")
    else:
        w.line(f"codes = rows[{e.start}:{e.stop}]")
    terms = [f"torch.gather(self.energy_{e.name}, 1, codes).sum(0)"]
    if e.kind == "neighbor":
        terms.append(
            f"torch.gather(self.energy_{e.name}_neighbor.reshape({e.width - 1}, {A * A}), 1, "
            f"codes[:-1] * {A} + codes[1:]).sum(0)"
        )
    elif e.kind == "pairwise":
        terms.append(
            f"torch.gather(self.energy_{e.name}_pairwise.reshape({e.width**2}, {A * A})"
            f"[self.site_{e.name}_rows], 1, "
            f"codes[self.site_{e.name}_i] * {A} + codes[self.site_{e.name}_j]).sum(0)"
        )
    w.line(f"e_{e.name} = (")
    with w.indent():
        for k, term in enumerate(terms):
            w.line(("" if k == 0 else "+ ") + term)
        w.line(f"+ self.energy_{e.name}_offset")
    w.line(")")


def write_probability_methods(c: Context) -> None:
    """``P(x)``, ``probabilities(E)`` and, for a kinetic model, ``log_rates(E)``."""
    w, m, arg = c.w, c.model, c.arg
    shape = "[N, n_states]" if c.seq else "[n_states]"
    w.line(f"def P(self{arg}):")
    with w.indent():
        what = "probabilities" if m.kind == "thermodynamic" else "steady-state occupancies"
        w.docstring(f"State {what}, columns in state_names order: Tensor{shape}.")
        contiguous = ".contiguous()" if c.seq else ""
        with recording(c):
            w.line(f"return self.probabilities(self.energy_table({arg[2:]})){contiguous}")
    w.line()
    w.line("def probabilities(self, E):")
    with w.indent():
        if m.kind == "thermodynamic":
            w.docstring(
                "P = softmax(-G) over states, from the energy table E (kT).\n\n"
                "G holds the states' free energies with states as rows, so the softmax\n"
                "runs across contiguous sequences (several times faster on CPU)."
            )
            w.line(f"G = self.state_energy @ E{c.T} + self.state_constant")
            w.line(f"return torch.softmax(-G, dim=0){c.T}")
        else:
            write_kinetic_probabilities(c)
    w.line()
    if m.kind == "kinetic":
        write_log_rates(c)


def write_output_methods(c: Context) -> None:
    """``forward`` and ``outputs(E, P)``, the outputs printed from their sympy forms."""
    w, m, syms = c.w, c.model, c.syms
    names: dict[sympy.Symbol, str] = {}
    pnames = {s: sympy.Symbol(f"P({s})", nonnegative=True) for s in m.states}
    for i, s in enumerate(m.states):
        names[pnames[s]] = f"P[..., {i}]"
    for k, n in enumerate(c.energy_names):
        names[syms[n]] = f"E[..., {k}]"
    exprs = [symbolic.to_sympy(o.expr, syms, pnames) for o in m.outputs]
    for o, e in zip(m.outputs, exprs, strict=True):
        if e.has(sympy.I, sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            raise BpmModelError(
                f"output '{o.name}' has no finite real value: it reduces to {sympy.sstr(e)}",
                o.span,
            )
    used_params = sorted(
        {p.name for p in m.params if any(syms[p.name] in e.free_symbols for e in exprs)}
    )
    for n in used_params:
        names[syms[n]] = f"p_{n}"
    replacements, reduced = sympy.cse(
        exprs, symbols=sympy.numbered_symbols("_c"), order="canonical"
    )
    printer = ModulePrinter(names)
    arg = c.arg
    w.line(f"def forward(self{arg}):")
    with w.indent():
        shape = "Tensor[N]" if c.seq else "0-d Tensor"
        several = len(m.outputs) > 1
        head = f"The outputs, a dict of {shape} by name:" if several else f"The output: {shape}."
        rows = [head, ""]
        for o, e in zip(m.outputs, exprs, strict=True):
            rows.append(f"{o.name} = {doc_expr(e)}")
        w.docstring("\n".join(rows))
        with recording(c):
            w.line(f"E = self.energy_table({arg[2:]})")
            w.line("P = self.probabilities(E)")
            w.line("return self.outputs(E, P)")
    w.line()
    w.line("def outputs(self, E, P):")
    with w.indent():
        w.docstring(
            "The outputs from the energy table E and the state probabilities P\n"
            "(one column per energy and per state)."
        )
        for n in used_params:
            w.line(f"p_{n} = {natural_code(c.slot(n))}")
        for sym, sub in replacements:
            w.line(f"{sym.name} = {printer.doprint(sub)}")
        varying = set(pnames.values()) | {syms[n] for n in c.energy_names}
        results = []
        for o, e in zip(m.outputs, reduced, strict=True):
            code = printer.doprint(e)
            if not (e.free_symbols & varying) and not any(
                s.name.startswith("_c") for s in e.free_symbols
            ):
                code = f"({code}) + torch.zeros_like(P[..., 0])"
            w.line(f"out_{o.name} = {code}")
            results.append(o.name)
        if len(results) == 1:
            w.line(f"return out_{results[0]}")
        else:
            w.line("return {" + ", ".join(f"{n!r}: out_{n}" for n in results) + "}")
    w.line()
