"""``bpm show``: a plain-text summary of a model for a person to read.

States, energies (site energies with their slice, kind and number of values),
parameters with the shapes they are stored in and the total learnable count,
for kinetic models the transitions and the number of spanning trees into each
state, then the closed forms: each state's weight, the partition function once,
``P(s) = w(s)/Z`` and each output as the model writes it (in terms of ``P(s)``), so
no probability repeats the expanded Z. It imports no torch.
"""

from __future__ import annotations

import sympy

from . import ir, printing, symbolic
from .codegen_layout import parameter_slots


def describe(
    model: ir.Model,
    derivation: symbolic.Derivation | None,
    tree_counts: dict[str, int] | None = None,
) -> str:
    """The summary text; ``derivation`` may be ``None`` (closed forms then omitted).

    A kinetic model's trees into each state are ``tree_counts``, else the
    derivation's, else counted here (above the budget, with no ``tree_counts``).
    """
    if tree_counts is None and derivation is not None:
        tree_counts = derivation.tree_counts
    lines = [f"model {model.name} ({model.kind})"]
    if model.doc:
        lines += [f"  {row.strip()}" for row in model.doc.strip().splitlines()]
    lines.append(f"temperature: {model.temperature_kelvin:g} K (kT = {model.kT:.4f} kcal/mol)")
    lines += _sequence(model)
    lines += _states(model, tree_counts)
    lines += _energies(model)
    lines += _parameters(model)
    if derivation is None:
        lines += ["closed forms: omitted (more spanning trees than the tree budget)"]
    else:
        lines += ["closed forms:"]
        lines += ["  " + row for row in _closed_forms(model, derivation)]
    return "\n".join(lines) + "\n"


def _closed_forms(model: ir.Model, derivation: symbolic.Derivation) -> list[str]:
    """Weights and Z as the derivation gives them; outputs as written in the file."""
    weights = {s: sympy.sstr(w, order="none") for s, w in derivation.weights.items()}
    outputs = {o.name: ir.format_expr(o.expr) for o in model.outputs}
    return printing.closed_form_lines(weights, sympy.sstr(derivation.Z, order="none"), outputs)


def _sequence(model: ir.Model) -> list[str]:
    s = model.sequence
    if s is None:
        return ["sequence: none"]
    numbered = f", {s.numbering.text()}" if s.numbering is not None else ""
    return [f"sequence {s.name}: {s.alphabet.name} '{s.alphabet.letters}', length {s.length}"
            + numbered]  # fmt: skip


def _states(model: ir.Model, counts: dict[str, int] | None) -> list[str]:
    symbols = symbolic.symbols_for(model)
    lines = [f"states ({len(model.states)}):"]
    width = max(len(s) for s in model.states)
    if model.kind == "thermodynamic":
        for st in model.thermo_states:
            form = sympy.sstr(symbolic.linear_form_to_sympy(st.energy, symbols), order="none")
            lines.append(f"  {st.name:<{width}}  G = {form}")
        return lines
    from . import kinetic

    if counts is None:
        counts = kinetic.count_all_trees(model)
    for s in model.states:
        lines.append(
            f"  {s:<{width}}  {counts[s]} spanning tree{'s' if counts[s] != 1 else ''} into it"
        )
    lines.append(f"  total spanning trees: {sum(counts.values())}")
    lines += kinetic.detailed_balance(model).describe().splitlines()
    lines.append(f"transitions ({len(model.transitions)}):")
    for j, t in enumerate(model.transitions):
        rate = sympy.sstr(symbolic.rate_to_sympy(t.rate, symbols), order="none")
        lines.append(f"  {j}: {t.source} -> {t.target} : {rate}")
    return lines


def site_values(e: ir.SiteEnergy, letters: int) -> int:
    """Stored values of a site energy: the matrix, its offset, and neighbor or pairwise tables."""
    n = e.width * letters + 1
    if e.kind == "neighbor":
        n += (e.width - 1) * letters * letters
    elif e.kind == "pairwise":
        n += e.width * e.width * letters * letters
    return n


def _energies(model: ir.Model) -> list[str]:
    lines = [f"energies ({len(model.energies)}, kT):"]
    letters = len(model.sequence.alphabet.letters) if model.sequence else 0
    for e in model.energies:
        if isinstance(e, ir.SiteEnergy):
            where = f"{model.sequence.name}[{e.start}:{e.stop}]"
            if e.revcomp:
                where = f"revcomp({where})"
            lines.append(
                f"  {e.name}: {e.kind}({where}), width {e.width}{ir.site_numbers(model, e)}, "
                f"{site_values(e, letters)} values, learned"
            )
        elif e.fixed:
            lines.append(f"  {e.name}: fixed at {e.value:g} kT ({e.value * model.kT:.4g} kcal/mol)")
        else:
            lines.append(f"  {e.name}: learned scalar, init {e.init:g} kT")
    return lines


def _parameters(model: ir.Model) -> list[str]:
    lines = [f"parameters ({len(model.params)}):"]
    for p in model.params:
        bound = f" > {p.lower:g}" if p.lower is not None else ""
        bound += f" < {p.upper:g}" if p.upper is not None else ""
        value = f"fixed at {p.value:g}" if p.fixed else f"learned, init {p.init:g}"
        lines.append(f"  {p.name}{bound}: {value}")
    letters = len(model.sequence.alphabet.letters) if model.sequence else 0
    lines.append("stored tensors (get_params name: shape):")
    total = 0
    for s in parameter_slots(model):
        shape = _shape(model, s.key, letters)
        size = 1
        for n in shape:
            size *= n
        if s.learned:
            total += size
        kind = "learned" if s.learned else "fixed"
        lines.append(f"  {s.key}: [{', '.join(map(str, shape))}] {kind}")
    lines.append(f"learnable values: {total}")
    return lines


def _shape(model: ir.Model, key: str, letters: int) -> tuple[int, ...]:
    name, _, part = key.partition(".")
    energy = next((e for e in model.energies if e.name == name), None)
    if not isinstance(energy, ir.SiteEnergy) or part == "offset":
        return ()
    w = energy.width
    return {
        "": (w, letters),
        "neighbor": (w - 1, letters, letters),
        "pairwise": (w, w, letters, letters),
    }[part]
