"""Code generation: a checked model and its closed forms to the text of a PyTorch module.

The module imports only ``torch`` and the standard library and follows the
contract in ``docs/module.md``. It is written by a small :class:`Writer` (lines
and an indentation context) and a :class:`ModulePrinter` (sympy's TorchPrinter
with symbols mapped to tensor expressions), never by string templates, and the
same model always gives the same bytes.

Numerics, all in log space:

- site energies are gathers on integer codes from flattened tables;
- thermodynamic: ``P = softmax(-G)`` over states, ``G = E @ C^T + c``;
- kinetic: ``log_rates = F @ R^T + r`` with ``F`` the energies and the logs of the
  parameters; each spanning tree's log-weight is ``log_rates @ M^T`` (``M`` the
  tree-by-edge matrix), each state's log-weight a logsumexp over its trees, and
  ``P = softmax`` of those. Above the tree budget, the steady state is solved
  numerically from the rate matrix instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import keyword
import math
from collections.abc import Iterator
from dataclasses import dataclass

import sympy
from sympy.printing.pytorch import TorchPrinter

from . import ir, symbolic
from .errors import BpmModelError

DEFAULT_TREE_BUDGET = 2000
DOC_EXPR_LIMIT = 2000  # characters of one closed form shown in a docstring


# ----------------------------------------------------------------- writer, printer


class Writer:
    """Lines of text with an indentation level."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._level = 0

    def line(self, text: str = "") -> None:
        self._lines.append(("    " * self._level + text) if text else "")

    def lines(self, texts: list[str]) -> None:
        for text in texts:
            self.line(text)

    @contextlib.contextmanager
    def indent(self) -> Iterator[None]:
        self._level += 1
        try:
            yield
        finally:
            self._level -= 1

    def docstring(self, text: str) -> None:
        """A triple-quoted docstring at the current level (one line if it fits)."""
        text = _escape_doc(text.strip("\n"))
        rows = text.split("\n")
        if len(rows) == 1:
            self.line(f'"""{rows[0]}"""')
            return
        self.line(f'"""{rows[0]}')
        for row in rows[1:]:
            self.line(row.rstrip())
        self.line('"""')

    def text(self) -> str:
        return "\n".join(self._lines).rstrip("\n") + "\n"


def _escape_doc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


class ModulePrinter(TorchPrinter):
    """sympy's TorchPrinter with each symbol printed as a given piece of code."""

    def __init__(self, names: dict[sympy.Symbol, str]):
        super().__init__({"fully_qualified_modules": True})
        self._names = names

    def _print_Symbol(self, expr: sympy.Symbol) -> str:
        return self._names.get(expr, expr.name)

    def _print_Float(self, expr: sympy.Float) -> str:
        """Every double-precision digit (sympy's default prints 15)."""
        return repr(float(expr))


# ------------------------------------------------------------------ naming


@dataclass(frozen=True)
class Stored:
    """How one name of the ``.bpm`` file is stored: attribute, transform and bound."""

    key: str  # the name get_params uses ("G_C", "G_C.offset", "t_sat")
    attr: str  # the module attribute
    how: str  # "identity", "lower" (value = bound + exp(raw)) or "upper" (bound - exp(raw))
    bound: float | None
    learned: bool


def _storage(model: ir.Model) -> list[Stored]:
    out: list[Stored] = []
    for e in model.energies:
        if isinstance(e, ir.SiteEnergy):
            out.append(Stored(e.name, f"energy_{e.name}", "identity", None, True))
            out.append(
                Stored(f"{e.name}.offset", f"energy_{e.name}_offset", "identity", None, True)
            )
            if e.kind != "matrix":
                out.append(
                    Stored(
                        f"{e.name}.{e.kind}", f"energy_{e.name}_{e.kind}", "identity", None, True
                    )
                )
        else:
            out.append(Stored(e.name, f"energy_{e.name}", "identity", None, not e.fixed))
    for p in model.params:
        if p.fixed:
            out.append(Stored(p.name, f"param_{p.name}", "identity", None, False))
        elif p.lower is not None:
            out.append(Stored(p.name, f"param_{p.name}_raw", "lower", p.lower, True))
        elif p.upper is not None:
            out.append(Stored(p.name, f"param_{p.name}_raw", "upper", p.upper, True))
        else:
            out.append(Stored(p.name, f"param_{p.name}", "identity", None, True))
    attrs = [s.attr for s in out]
    if len(set(attrs)) != len(attrs):
        dup = sorted({a for a in attrs if attrs.count(a) > 1})
        raise BpmModelError(f"declared names collide in the generated module: {', '.join(dup)}")
    return out


def class_name(model: ir.Model) -> str:
    """The model's name as a Python class name (a trailing ``_`` after a keyword)."""
    name = model.name
    return name + "_" if keyword.iskeyword(name) or name in ("Model", "torch", "math") else name


def model_hash(model: ir.Model) -> str:
    """sha256 of the model's IR dump (spans left out): same model, same hash."""
    return hashlib.sha256(ir.dump(model).encode("utf-8")).hexdigest()


def _f(value: float) -> str:
    """A float literal that reads back exactly."""
    value = float(value)
    if math.isinf(value):
        return "math.inf" if value > 0 else "-math.inf"
    return repr(value)


def _doc_expr(expr: sympy.Expr) -> str:
    text = sympy.sstr(expr, order="none")
    if len(text) > DOC_EXPR_LIMIT:
        return f"({len(text)} characters; see `bpm compile --emit sympy`)"
    return text


# ------------------------------------------------------------------ entry point


def generate(
    model: ir.Model,
    derivation: symbolic.Derivation | None,
    source_name: str,
    tree_budget: int | None = DEFAULT_TREE_BUDGET,
) -> str:
    """The text of the generated module for ``model`` (read from ``source_name``).

    ``derivation`` supplies the closed forms for the docstrings; it may be ``None``
    for a kinetic model above the tree budget, whose closed form is too large.
    """
    gen = _Generator(model, derivation, source_name, tree_budget)
    text = gen.module()
    compile(text, f"<bpm module {model.name}>", "exec")
    return text


def closed_forms(
    model: ir.Model, tree_budget: int | None = DEFAULT_TREE_BUDGET
) -> symbolic.Derivation | None:
    """The derivation ``generate`` wants: ``None`` for a kinetic scheme above the tree budget.

    Above the budget the module solves for the steady state numerically, and the
    closed form (a sum over every spanning tree) is too large to derive or print.
    """
    if model.kind == "thermodynamic":
        from .thermodynamic import derive

        return derive(model)
    from . import kinetic

    kinetic.check_steady_state(model)
    if not kinetic.within_budget(model, tree_budget):
        return None
    return kinetic.derive(model, tree_budget)


class _Generator:
    def __init__(self, model, derivation, source_name, tree_budget):
        self.model = model
        self.deriv = derivation
        self.source_name = source_name
        self.storage = _storage(model)
        self.cls = class_name(model)
        self.w = Writer()
        self.seq = model.sequence
        self.energy_names = tuple(e.name for e in model.energies)
        self.trees: dict[str, tuple[tuple[int, ...], ...]] | None = None
        if model.kind == "kinetic":
            self._check_rates()
            from . import kinetic

            counts = kinetic.count_all_trees(model)
            if tree_budget is None or sum(counts.values()) <= tree_budget:
                self.trees = kinetic.trees_into(model)

    @property
    def _T(self) -> str:
        """Transpose between the [N, ...] interface and the rows-inside layout."""
        return ".T" if self.seq else ""

    @property
    def _column(self) -> str:
        """Per-state constants get a trailing axis to broadcast over sequences."""
        return ".unsqueeze(-1)" if self.seq else ""

    # -------------------------------------------------------------- checks

    def _check_rates(self) -> None:
        for t in self.model.transitions:
            for name, _ in t.rate.params:
                if not self.model.param(name).positive:
                    raise BpmModelError(
                        f"rate of {t.source} -> {t.target} uses '{name}', which may be negative",
                        t.span,
                    )

    # -------------------------------------------------------------- module

    def module(self) -> str:
        w, m = self.w, self.model
        w.line(f"# Generated by bpm from {self.source_name}; do not edit.")
        w.line(f"# model sha256: {model_hash(m)}")
        w.docstring(self._module_doc())
        w.line()
        w.line("from __future__ import annotations")
        w.line()
        w.line("import math")
        w.line()
        w.line("import torch")
        if m.kind == "kinetic":
            self._transitions_table()
        w.line()
        w.line()
        w.line(f"class {self.cls}(torch.nn.Module):")
        with w.indent():
            w.docstring(self._class_doc())
            w.line()
            self._class_attributes()
            self._init()
            if self.seq is not None:
                self._encode()
            self._energy_methods()
            self._probability_methods()
            self._output_methods()
            self._param_methods()
        w.line()
        w.line()
        w.line(f"Model = {self.cls}")
        return w.text()

    def _module_doc(self) -> str:
        m = self.model
        rows = [f"{m.name}: {m.kind} model compiled by bpm from {self.source_name}."]
        if m.doc:
            rows += ["", *[r.strip() for r in m.doc.strip().splitlines()]]
        rows += ["", "Closed forms (energies in kT):"]
        if self.deriv is None:
            rows.append("    (omitted: more spanning trees than the tree budget)")
        else:
            for s in m.states:
                rows.append(f"    w({s}) = {_doc_expr(self.deriv.weights[s])}")
            rows.append(f"    Z = {_doc_expr(self.deriv.Z)}")
            for s in m.states:
                rows.append(f"    P({s}) = w({s}) / Z")
            for name, expr in self.deriv.outputs.items():
                rows.append(f"    {name} = {_doc_expr(expr)}")
        return "\n".join(rows)

    def _class_doc(self) -> str:
        m = self.model
        rows = [f"The {m.kind} model {m.name} as a trainable module."]
        if m.kind == "thermodynamic":
            rows += ["", "States and free energies (kT):"]
            for s in m.thermo_states:
                energy = symbolic.linear_form_to_sympy(s.energy, self._syms)
                rows.append(f"    {s.name}: {_doc_expr(energy)}")
        else:
            rows += ["", "Transitions (index: source -> target: rate):"]
            for j, t in enumerate(m.transitions):
                rows.append(f"    {j}: {t.source} -> {t.target}: {self._rate_text(t)}")
        rows += ["", "Outputs:"]
        pnames = {s: sympy.Symbol(f"P({s})") for s in m.states}
        for o in m.outputs:
            rows.append(
                f"    {o.name} = {_doc_expr(symbolic.to_sympy(o.expr, self._syms, pnames))}"
            )
        return "\n".join(rows)

    @property
    def _syms(self) -> dict[str, sympy.Symbol]:
        return symbolic.symbols_for(self.model)

    def _rate_text(self, t: ir.Transition) -> str:
        return sympy.sstr(symbolic.rate_to_sympy(t.rate, self._syms), order="none")

    def _transitions_table(self) -> None:
        w, m = self.w, self.model
        w.line()
        w.line()
        w.line("# Transitions: (source, target), indexed as the columns of log_rates.")
        w.line("TRANSITIONS = (")
        with w.indent():
            for j, t in enumerate(m.transitions):
                w.line(f"({t.source!r}, {t.target!r}),  # {j}: {self._rate_text(t)}")
        w.line(")")
        if self.trees is not None:
            w.line()
            w.line("# King-Altman: the spanning trees directed into each state, as indices")
            w.line(
                "# into TRANSITIONS; a state's weight is the sum over its trees of rate products."
            )
            w.line("TREES = {")
            with w.indent():
                for s in m.states:
                    trees = self.trees[s]
                    if not trees:
                        w.line(f"{s!r}: (),")
                        continue
                    w.line(f"{s!r}: (")
                    with w.indent():
                        per_line = max(1, 80 // (4 * max(len(trees[0]), 1) + 4))
                        for k in range(0, len(trees), per_line):
                            w.line(" ".join(f"{tree!r}," for tree in trees[k : k + per_line]))
                    w.line("),")
            w.line("}")

    def _class_attributes(self) -> None:
        w, m = self.w, self.model
        w.line(f"name = {m.name!r}")
        w.line(f"kind = {m.kind!r}")
        w.line(f"alphabet = {self.seq.alphabet.letters if self.seq else None!r}")
        w.line(f"sequence_length = {self.seq.length if self.seq else None!r}")
        w.line(f"state_names = {tuple(m.states)!r}")
        w.line(f"output_names = {tuple(o.name for o in m.outputs)!r}")
        w.line(f"energy_names = {self.energy_names!r}")
        w.line(f"param_names = {tuple(p.name for p in m.params)!r}")
        w.line("site_energies = {")
        with w.indent():
            for e in m.site_energies:
                w.line(
                    f"{e.name!r}: {{'kind': {e.kind!r}, 'start': {e.start}, "
                    f"'stop': {e.stop}, 'revcomp': {e.revcomp}}},"
                )
        w.line("}")
        w.line(f"kT_kcal_per_mol = {_f(m.kT)}")
        w.line("# get_params() name: (attribute, transform, bound)")
        w.line("_storage = {")
        with w.indent():
            for s in self.storage:
                bound = None if s.bound is None else _f(s.bound)
                w.line(f"{s.key!r}: ({s.attr!r}, {s.how!r}, {bound}),")
        w.line("}")
        w.line()

    # -------------------------------------------------------------- __init__

    def _init(self) -> None:
        w, m = self.w, self.model
        w.line("def __init__(self):")
        with w.indent():
            w.line("super().__init__()")
            A = len(self.seq.alphabet.letters) if self.seq else 0
            for e in m.energies:
                if isinstance(e, ir.SiteEnergy):
                    self._init_site(e, A)
                elif e.fixed:
                    w.line(f"# {e.name} = {_f(e.value)} kT, fixed")
                    w.line(f'self.register_buffer("energy_{e.name}", torch.tensor({_f(e.value)}))')
                else:
                    w.line(f"# {e.name}: learned energy in kT")
                    w.line(f"self.energy_{e.name} = torch.nn.Parameter(torch.tensor({_f(e.init)}))")
            for p, s in zip(
                m.params, self.storage[-len(m.params) :] if m.params else [], strict=True
            ):
                self._init_param(p, s)
            if any(e.revcomp for e in m.site_energies):
                comp = self.seq.alphabet.complement
                if comp is None:
                    raise BpmModelError(
                        f"alphabet {self.seq.alphabet.name} has no complement for revcomp sites"
                    )
                w.line("# the code of each letter's complement, for sites read on the other strand")
                w.line(
                    f'self.register_buffer("complement", torch.tensor({list(comp)!r}), '
                    "persistent=False)"
                )
            if m.kind == "thermodynamic":
                self._init_thermo()
            else:
                self._init_kinetic()
        w.line()

    def _init_site(self, e: ir.SiteEnergy, A: int) -> None:
        w = self.w
        width = e.width
        strand = ", reverse complement" if e.revcomp else ""
        w.line(f"# {e.name} = {e.kind}(x[{e.start}:{e.stop}]{strand}): learned, in kT")
        w.line(f"self.energy_{e.name} = torch.nn.Parameter(torch.zeros({width}, {A}))")
        w.line(f"self.energy_{e.name}_offset = torch.nn.Parameter(torch.zeros(()))")
        w.line(
            f'self.register_buffer("site_{e.name}_positions", '
            f"torch.arange({width}) * {A}, persistent=False)"
        )
        if e.kind == "neighbor":
            w.line(
                f"self.energy_{e.name}_neighbor = "
                f"torch.nn.Parameter(torch.zeros({width - 1}, {A}, {A}))"
            )
            w.line(
                f'self.register_buffer("site_{e.name}_pairs", '
                f"torch.arange({width - 1}) * {A * A}, persistent=False)"
            )
        elif e.kind == "pairwise":
            w.line(
                f"self.energy_{e.name}_pairwise = "
                f"torch.nn.Parameter(torch.zeros({width}, {width}, {A}, {A}))"
            )
            w.line(f"i, j = torch.triu_indices({width}, {width}, offset=1)")
            w.line(f'self.register_buffer("site_{e.name}_i", i, persistent=False)')
            w.line(f'self.register_buffer("site_{e.name}_j", j, persistent=False)')
            w.line(
                f'self.register_buffer("site_{e.name}_pairs", '
                f"(i * {width} + j) * {A * A}, persistent=False)"
            )

    def _init_param(self, p: ir.Param, s: Stored) -> None:
        w = self.w
        if p.fixed:
            w.line(f"# {p.name} = {_f(p.value)}, fixed")
            w.line(f'self.register_buffer("{s.attr}", torch.tensor({_f(p.value)}))')
        elif s.how == "lower":
            shifted = p.name if p.lower == 0 else f"{p.name} - {_f(p.lower)}"
            w.line(f"# {p.name} > {_f(p.lower)}, stored as log({shifted})")
            raw = _f(math.log(p.init - p.lower))
            w.line(f"self.{s.attr} = torch.nn.Parameter(torch.tensor({raw}))")
        elif s.how == "upper":
            w.line(f"# {p.name} < {_f(p.upper)}, stored as log({_f(p.upper)} - {p.name})")
            raw = _f(math.log(p.upper - p.init))
            w.line(f"self.{s.attr} = torch.nn.Parameter(torch.tensor({raw}))")
        else:
            w.line(f"# {p.name}: learned, unbounded")
            w.line(f"self.{s.attr} = torch.nn.Parameter(torch.tensor({_f(p.init)}))")

    def _init_thermo(self) -> None:
        w, m = self.w, self.model
        coef = [[_f(s.energy.coefficient(n)) for n in self.energy_names] for s in m.thermo_states]
        w.line("# free energy of each state: G = state_energy @ energies + state_constant")
        w.line("self.register_buffer(")
        with w.indent():
            w.line('"state_energy",')
            w.line("torch.tensor([")
            with w.indent():
                for s, row in zip(m.thermo_states, coef, strict=True):
                    w.line(f"[{', '.join(row)}],  # {s.name}")
            w.line(f"]).reshape({len(m.thermo_states)}, {len(self.energy_names)}),")
            w.line("persistent=False,")
        w.line(")")
        consts = ", ".join(_f(s.energy.constant) for s in m.thermo_states)
        w.line(
            f'self.register_buffer("state_constant", torch.tensor([{consts}]){self._column}, '
            "persistent=False)"
        )

    def _rate_features(self) -> list[tuple[str, str]]:
        """Columns of the log-rate feature matrix: (key in log_rate, code of its value)."""
        feats = [(n, f"E[..., {k}]") for k, n in enumerate(self.energy_names)]
        used = sorted({n for t in self.model.transitions for n, _ in t.rate.params})
        feats += [(f"log:{n}", self._log_param(n)) for n in used]
        return feats

    def _init_kinetic(self) -> None:
        w, m = self.w, self.model
        feats = self._rate_features()
        S, E = len(m.states), len(m.transitions)
        w.line("# log_rates = rate_coefficients @ features + rate_constant, the features being")
        logs = ", ".join(k[4:] for k, _ in feats if k.startswith("log:")) or "no parameters"
        w.line(f"# the energies then the logs of {logs}")
        w.line("self.register_buffer(")
        with w.indent():
            w.line('"rate_coefficients",')
            w.line("torch.tensor([")
            with w.indent():
                for j, t in enumerate(m.transitions):
                    row = ", ".join(_f(t.rate.log_rate.coefficient(k)) for k, _ in feats)
                    w.line(f"[{row}],  # {j}: {t.source} -> {t.target}")
            w.line(f"]).reshape({E}, {len(feats)}),")
            w.line("persistent=False,")
        w.line(")")
        consts = ", ".join(_f(t.rate.log_rate.constant) for t in m.transitions)
        w.line(
            f'self.register_buffer("rate_constant", torch.tensor([{consts}]){self._column}, '
            "persistent=False)"
        )
        w.line(f"states = {tuple(m.states)!r}")
        if self.trees is not None:
            w.line(
                "# tree_edges[t, j] = 1 when transition j is in tree t "
                "(trees of all states in order)"
            )
            w.line("trees = [tree for state in states for tree in TREES[state]]")
            w.line(f"tree_edges = torch.zeros(len(trees), {E}, dtype=torch.long)")
            w.line("for t, tree in enumerate(trees):")
            with w.indent():
                w.line("tree_edges[t, list(tree)] = 1")
            w.line('self.register_buffer("tree_edges", tree_edges, persistent=False)')
            w.line("# tree_index[s, k]: the k-th tree of state s; tree_mask is -inf on padding")
            w.line("width = max(len(TREES[state]) for state in states)")
            w.line(f"tree_index = torch.zeros({S}, width, dtype=torch.long)")
            w.line(f"tree_mask = torch.full(({S}, width), -math.inf)")
            w.line("start = 0")
            w.line("for s, state in enumerate(states):")
            with w.indent():
                w.line("count = len(TREES[state])")
                w.line("tree_index[s, :count] = torch.arange(start, start + count)")
                w.line("tree_mask[s, : max(count, 1)] = 0.0")
                w.line("start += count")
            w.line('self.register_buffer("tree_index", tree_index, persistent=False)')
            w.line(f'self.register_buffer("tree_mask", tree_mask{self._column}, persistent=False)')
            if any(not self.trees[s] for s in m.states):
                w.line("# states no tree leads into (transient) have occupancy zero")
                w.line(
                    'self.register_buffer("state_mask", torch.tensor('
                    "[0.0 if TREES[state] else -math.inf for state in states])"
                    f"{self._column}, persistent=False)"
                )
        else:
            w.line(
                "# rate matrix Q (dp/dt = Q p) = rates @ generator, reshaped to [states, states]"
            )
            w.line(f"generator = torch.zeros({E}, {S}, {S})")
            w.line("for j, (source, target) in enumerate(TRANSITIONS):")
            with w.indent():
                w.line("a, b = states.index(source), states.index(target)")
                w.line("generator[j, b, a] += 1.0")
                w.line("generator[j, a, a] -= 1.0")
            w.line(
                f'self.register_buffer("generator", generator.reshape({E}, {S * S}), '
                "persistent=False)"
            )
            w.line("# the first balance equation is replaced by sum(p) = 1")
            w.line(f'self.register_buffer("normalization", torch.eye({S})[0], persistent=False)')

    def _log_param(self, name: str) -> str:
        """Code for log(param) (a positive parameter), stable for the stored form."""
        s = next(s for s in self.storage if s.key == name)
        if s.how == "lower" and s.bound == 0:
            return f"self.{s.attr}"
        if s.how == "lower":
            log_bound = _f(math.log(s.bound))
            return f"torch.logaddexp(self.{s.attr}, torch.full_like(self.{s.attr}, {log_bound}))"
        return f"torch.log(self.{s.attr})"

    def _natural(self, name: str) -> str:
        s = next(s for s in self.storage if s.key == name)
        if s.how == "lower":
            raw = f"torch.exp(self.{s.attr})"
            return raw if s.bound == 0 else f"{_f(s.bound)} + {raw}"
        if s.how == "upper":
            return f"{_f(s.bound)} - torch.exp(self.{s.attr})"
        return f"self.{s.attr}"

    # -------------------------------------------------------------- encode

    def _encode(self) -> None:
        w, seq = self.w, self.seq
        L = seq.length
        w.line("def encode(self, sequences):")
        with w.indent():
            w.docstring(
                f"Integer codes (index into alphabet) of {L}-letter sequences: "
                f"LongTensor[N, {L}].\n\n"
                "Lower case is accepted; a wrong letter or length, or an empty batch,\n"
                "raises ValueError naming the first bad sequence."
            )
            w.line("if isinstance(sequences, str):")
            with w.indent():
                w.line("sequences = [sequences]")
            w.line("sequences = list(sequences)")
            w.line("if not sequences:")
            with w.indent():
                w.line('raise ValueError("encode: empty batch of sequences")')
            w.line("for i, s in enumerate(sequences):")
            with w.indent():
                w.line("if not isinstance(s, str):")
                with w.indent():
                    w.line('raise ValueError(f"sequence {i} is not a string: {s!r}")')
                w.line("if len(s) != self.sequence_length:")
                with w.indent():
                    w.line("raise ValueError(")
                    with w.indent():
                        w.line(
                            'f"sequence {i} has length {len(s)}, '
                            'expected {self.sequence_length}: {s!r}"'
                        )
                    w.line(")")
            w.line("table = [-1] * 256")
            w.line("for code, letter in enumerate(self.alphabet):")
            with w.indent():
                w.line("for variant in (letter.lower(), letter.upper()):")
                with w.indent():
                    w.line("if variant == letter or variant not in self.alphabet:")
                    with w.indent():
                        w.line("table[ord(variant)] = code")
            w.line('data = "".join(sequences).encode("latin-1", errors="replace")')
            w.line("raw = torch.frombuffer(bytearray(data), dtype=torch.uint8).long()")
            w.line("codes = torch.tensor(table)[raw]")
            w.line("bad = (codes < 0).nonzero()")
            w.line("if len(bad):")
            with w.indent():
                w.line("i, k = divmod(int(bad[0, 0]), self.sequence_length)")
                w.line("raise ValueError(")
                with w.indent():
                    w.line('f"sequence {i} has letter {sequences[i][k]!r} at position {k}, "')
                    w.line('f"not in {self.alphabet!r}: {sequences[i]!r}"')
                w.line(")")
            w.line("return codes.reshape(len(sequences), self.sequence_length)")
        w.line()

    # -------------------------------------------------------------- energies

    def _energy_methods(self) -> None:
        w, m = self.w, self.model
        arg = ", x" if self.seq else ""
        shape = "[N, n_energies]" if self.seq else "[n_energies]"
        w.line(f"def energy_table(self{arg}):")
        with w.indent():
            doc = f"Every energy in kT, columns in energy_names order: Tensor{shape}."
            if self.seq:
                doc += "\n\nA transposed view: inside, energies are rows and sequences columns."
            w.docstring(doc)
            if not m.energies:
                lead = "(x.shape[0], 0)" if self.seq else "(0,)"
                ref = "state_constant" if m.kind == "thermodynamic" else "rate_constant"
                w.line(f"return self.{ref}.new_zeros({lead})")
            else:
                if self.seq:
                    w.line("n = x.shape[0]")
                cols = []
                for e in m.energies:
                    cols.append(f"e_{e.name}")
                    if isinstance(e, ir.SiteEnergy):
                        self._site_code(e)
                    elif self.seq:
                        w.line(f"e_{e.name} = self.energy_{e.name}.expand(n)")
                    else:
                        w.line(f"e_{e.name} = self.energy_{e.name}")
                w.line(f"return torch.stack([{', '.join(cols)}]){self._T}")
        w.line()
        w.line(f"def energies(self{arg}):")
        with w.indent():
            out = "Tensor[N]" if self.seq else "0-d Tensor"
            w.docstring(f"Every declared energy in kT: dict of {out}, scalars broadcast.")
            w.line(f"table = self.energy_table({arg[2:]})")
            w.line("return {name: table[..., k] for k, name in enumerate(self.energy_names)}")
        w.line()
        if m.site_energies:
            w.line("@staticmethod")
            w.line("def _lookup(table, index):")
            with w.indent():
                w.docstring(
                    "table.flatten()[index] as a gather: index [N, k] -> Tensor[N, k].\n\n"
                    "Up to 64 sequences share a row of the gather, so the backward pass\n"
                    "scatters into [N / rows, table size] rather than [N, table size]."
                )
                w.line("n, k = index.shape")
                w.line("block = math.gcd(n, 64) if isinstance(n, int) else 1")
                w.line("flat = table.reshape(1, -1).expand(n // block, -1)")
                w.line(
                    "return torch.gather(flat, 1, index.reshape(n // block, block * k))"
                    ".reshape(n, k)"
                )
            w.line()

    def _site_code(self, e: ir.SiteEnergy) -> None:
        w = self.w
        A = len(self.seq.alphabet.letters)
        if e.revcomp:
            w.line(f"codes = self.complement[x[:, {e.start}:{e.stop}]].flip(1)  # other strand")
        else:
            w.line(f"codes = x[:, {e.start}:{e.stop}]")
        terms = [
            f"self._lookup(self.energy_{e.name}, codes + self.site_{e.name}_positions).sum(1)",
        ]
        if e.kind == "neighbor":
            terms.append(
                f"self._lookup(self.energy_{e.name}_neighbor, "
                f"codes[:, :-1] * {A} + codes[:, 1:] + self.site_{e.name}_pairs).sum(1)"
            )
        elif e.kind == "pairwise":
            terms.append(
                f"self._lookup(self.energy_{e.name}_pairwise, "
                f"codes[:, self.site_{e.name}_i] * {A} + codes[:, self.site_{e.name}_j] "
                f"+ self.site_{e.name}_pairs).sum(1)"
            )
        w.line(f"e_{e.name} = (")
        with w.indent():
            for k, term in enumerate(terms):
                w.line(("" if k == 0 else "+ ") + term)
            w.line(f"+ self.energy_{e.name}_offset")
        w.line(")")

    # -------------------------------------------------------------- probabilities

    def _probability_methods(self) -> None:
        w, m = self.w, self.model
        arg = ", x" if self.seq else ""
        shape = "[N, n_states]" if self.seq else "[n_states]"
        w.line(f"def P(self{arg}):")
        with w.indent():
            what = "probabilities" if m.kind == "thermodynamic" else "steady-state occupancies"
            w.docstring(f"State {what}, columns in state_names order: Tensor{shape}.")
            contiguous = ".contiguous()" if self.seq else ""
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
                w.line(f"G = self.state_energy @ E{self._T} + self.state_constant")
                w.line(f"return torch.softmax(-G, dim=0){self._T}")
            elif self.trees is not None:
                w.docstring(
                    "King-Altman: log w(s) = logsumexp over trees into s of summed log-rates;\n"
                    "P = softmax(log w) over states (states as rows inside)."
                )
                w.line("log_rates = self.log_rates(E)")
                w.line(
                    f"tree_log_weights = self.tree_edges.to(log_rates.dtype) @ log_rates{self._T}"
                )
                w.line(
                    "log_w = torch.logsumexp("
                    "tree_log_weights[self.tree_index] + self.tree_mask, dim=1)"
                )
                if any(not self.trees[s] for s in m.states):
                    w.line("log_w = log_w + self.state_mask")
                w.line(f"return torch.softmax(log_w, dim=0){self._T}")
            else:
                w.docstring(
                    "Steady state by a linear solve (more spanning trees than the budget):\n"
                    "Q p = 0 with the first balance row replaced by sum(p) = 1. Rates are\n"
                    "scaled by their largest one per sequence, which leaves p unchanged."
                )
                S = len(m.states)
                w.line("log_rates = self.log_rates(E)")
                w.line("batch = log_rates.shape[:-1]")
                w.line("log_rates = log_rates.reshape(-1, log_rates.shape[-1])")
                w.line("rates = torch.exp(log_rates - log_rates.amax(dim=-1, keepdim=True))")
                w.line(f"Q = (rates @ self.generator.to(rates.dtype)).reshape(-1, {S}, {S})")
                w.line("A = torch.cat([torch.ones_like(Q[:, :1, :]), Q[:, 1:, :]], dim=1)")
                w.line("b = self.normalization.to(rates.dtype).expand(Q.shape[0], -1)")
                w.line("p = torch.linalg.solve(A, b).clamp_min(0.0)")
                w.line("p = p / p.sum(dim=-1, keepdim=True)")
                w.line(f"return p.reshape(*batch, {S})")
        w.line()
        if m.kind == "kinetic":
            w.line("def log_rates(self, E):")
            with w.indent():
                w.docstring("Log of each transition's rate, columns in TRANSITIONS order.")
                feats = self._rate_features()
                logs = [code for key, code in feats if key.startswith("log:")]
                if logs:
                    w.line(f"logs = torch.stack([{', '.join(logs)}])")
                    if self.seq:
                        w.line("logs = logs.unsqueeze(-1).expand(-1, E.shape[0])")
                    w.line(f"features = torch.cat([E{self._T}, logs])")
                else:
                    w.line(f"features = E{self._T}")
                w.line(f"return (self.rate_coefficients @ features + self.rate_constant){self._T}")
            w.line()

    # -------------------------------------------------------------- outputs

    def _output_methods(self) -> None:
        w, m = self.w, self.model
        syms = self._syms
        names: dict[sympy.Symbol, str] = {}
        pnames = {s: sympy.Symbol(f"P({s})", nonnegative=True) for s in m.states}
        for i, s in enumerate(m.states):
            names[pnames[s]] = f"P[..., {i}]"
        for k, n in enumerate(self.energy_names):
            names[syms[n]] = f"E[..., {k}]"
        exprs = [symbolic.to_sympy(o.expr, syms, pnames) for o in m.outputs]
        used_params = sorted(
            {p.name for p in m.params if any(syms[p.name] in e.free_symbols for e in exprs)}
        )
        for n in used_params:
            names[syms[n]] = f"p_{n}"
        replacements, reduced = sympy.cse(
            exprs, symbols=sympy.numbered_symbols("_c"), order="canonical"
        )
        printer = ModulePrinter(names)
        arg = ", x" if self.seq else ""
        w.line(f"def forward(self{arg}):")
        with w.indent():
            several = len(m.outputs) > 1
            shape = "Tensor[N]" if self.seq else "0-d Tensor"
            head = (
                f"The outputs, a dict of {shape} by name:" if several else f"The output: {shape}."
            )
            rows = [head, ""]
            for o, e in zip(m.outputs, exprs, strict=True):
                rows.append(f"{o.name} = {_doc_expr(e)}")
            w.docstring("\n".join(rows))
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
                w.line(f"p_{n} = {self._natural(n)}")
            for sym, sub in replacements:
                w.line(f"{sym.name} = {printer.doprint(sub)}")
            results = []
            for o, e in zip(m.outputs, reduced, strict=True):
                code = printer.doprint(e)
                if not (
                    e.free_symbols & (set(pnames.values()) | {syms[n] for n in self.energy_names})
                ) and not any(s.name.startswith("_c") for s in e.free_symbols):
                    code = f"({code}) + torch.zeros_like(P[..., 0])"
                w.line(f"out_{o.name} = {code}")
                results.append(o.name)
            if len(results) == 1:
                w.line(f"return out_{results[0]}")
            else:
                w.line("return {" + ", ".join(f"{n!r}: out_{n}" for n in results) + "}")
        w.line()

    # -------------------------------------------------------------- parameters

    def _param_methods(self) -> None:
        w = self.w
        w.line("def get_params(self):")
        with w.indent():
            w.docstring(
                "Every parameter and energy in natural units (kT for energies), detached.\n\n"
                "Keyed by the names in the .bpm file; see docs/module.md for site energies."
            )
            w.line("values = {}")
            w.line("for key, (attr, how, bound) in self._storage.items():")
            with w.indent():
                w.line("raw = getattr(self, attr).detach()")
                w.line('if how == "lower":')
                with w.indent():
                    w.line("values[key] = bound + torch.exp(raw)")
                w.line('elif how == "upper":')
                with w.indent():
                    w.line("values[key] = bound - torch.exp(raw)")
                w.line("else:")
                with w.indent():
                    w.line("values[key] = raw.clone()")
            w.line("return values")
        w.line()
        w.line("def set_params(self, values):")
        with w.indent():
            w.docstring(
                "Set any subset of get_params() in natural units (fixed values included).\n\n"
                "KeyError for an unknown name, ValueError for a wrong shape or a value\n"
                "outside its bound."
            )
            w.line("for key in values:")
            with w.indent():
                w.line("if key not in self._storage:")
                with w.indent():
                    w.line(
                        'raise KeyError(f"unknown parameter {key!r}; '
                        "known: {', '.join(self._storage)}\")"
                    )
            w.line("with torch.no_grad():")
            with w.indent():
                w.line("for key, value in values.items():")
                with w.indent():
                    w.line("attr, how, bound = self._storage[key]")
                    w.line("target = getattr(self, attr)")
                    w.line(
                        "value = torch.as_tensor(value, dtype=target.dtype, device=target.device)"
                    )
                    w.line("if value.shape != target.shape:")
                    with w.indent():
                        w.line(
                            'raise ValueError(f"{key}: shape {tuple(value.shape)}, '
                            'expected {tuple(target.shape)}")'
                        )
                    w.line('if how == "lower":')
                    with w.indent():
                        w.line("if not bool((value > bound).all()):")
                        with w.indent():
                            w.line(
                                'raise ValueError(f"{key} must be > {bound}, got {value.tolist()}")'
                            )
                        w.line("value = torch.log(value - bound)")
                    w.line('elif how == "upper":')
                    with w.indent():
                        w.line("if not bool((value < bound).all()):")
                        with w.indent():
                            w.line(
                                'raise ValueError(f"{key} must be < {bound}, got {value.tolist()}")'
                            )
                        w.line("value = torch.log(bound - value)")
                    w.line("target.copy_(value)")
