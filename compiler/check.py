"""AST to IR: resolve names, check the model makes sense, collect every error.

Each check appends to a list rather than raising, so a file with three mistakes
reports all three at once (:class:`~bpm.compiler.errors.BpmErrors`).

>>> from bpm.compiler.parse import parse
>>> text = "model m  param k > 0  kinetic { a <-> b : k, 1 }  output v = P(a)"
>>> model, warnings = check(parse(text))
>>> model.states, len(model.transitions)
(('a', 'b'), 2)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import networkx as nx

from . import ast, ir
from .errors import (
    BpmError,
    BpmErrors,
    BpmModelError,
    BpmNameError,
    Source,
    Span,
    Warnings,
    did_you_mean,
)

FUNCTIONS = {"exp": 1, "log": 1, "sqrt": 1}
SITE_KINDS = ("matrix", "neighbor", "pairwise")
RESERVED = {"P", "exp", "log", "sqrt", "revcomp", *SITE_KINDS}


class _Checker:
    """Walks one model file, filling ``errors`` and ``warnings``."""

    def __init__(self, tree: ast.ModelFile):
        self.tree = tree
        self.errors: list[BpmError] = []
        self.warnings = Warnings()
        self.used: set[str] = set()

    def error(self, cls: type[BpmError], message: str, span: Span, note: str | None = None):
        self.errors.append(cls(message, span, note=note))

    # ------------------------------------------------------------------ driver

    def run(self) -> ir.Model | None:
        tree = self.tree
        of = _statements_of(tree)
        temperature = self.temperature(of(ast.TemperatureDecl))
        kT = ir.GAS_CONSTANT_KCAL * temperature
        sequence = self.sequence(of(ast.SequenceDecl))
        self.declared: dict[str, Span] = {}
        energies = tuple(e for d in of(ast.EnergyDecl) if (e := self.energy(d, sequence, kT)))
        params = tuple(p for d in of(ast.ParamDecl) if (p := self.param(d)))
        self.energies = {e.name: e for e in energies}
        self.params = {p.name: p for p in params}

        thermo, kinetic = of(ast.ThermoBlock), of(ast.KineticBlock)
        kind = self.block_kind(thermo, kinetic)
        states: tuple[str, ...] = ()
        thermo_states: tuple[ir.State, ...] = ()
        transitions: tuple[ir.Transition, ...] = ()
        if kind == "thermodynamic":
            thermo_states = self.thermo_states(thermo[0])
            states = tuple(dict.fromkeys(s.name.name for s in thermo[0].states))
        elif kind == "kinetic":
            transitions = self.transitions(kinetic[0])
            states = tuple(dict.fromkeys(n for t in transitions for n in (t.source, t.target)))
            self.connectivity(kinetic[0], transitions, states)
        self.states = set(states)
        outputs = self.outputs(of(ast.OutputDecl))
        self.unused(energies, params, sequence)
        if self.errors or kind is None:
            return None
        return ir.Model(
            name=tree.name.name,
            doc=tree.doc,
            kind=kind,
            sequence=sequence,
            energies=energies,
            params=params,
            states=states,
            thermo_states=thermo_states,
            transitions=transitions,
            outputs=outputs,
            temperature_kelvin=temperature,
            span=tree.span,
        )

    # ------------------------------------------------------------ declarations

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
        return ir.SequenceDecl(d.name.name, alphabet, d.length, span=d.span)

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
            return ir.ScalarEnergy(
                d.name.name, fixed, fixed if fixed is not None else init, span=d.span
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
        if d.fixed is not None:
            value = d.fixed
            if not _within(value, lower, upper):
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
            if not _within(init, lower, upper):
                self.error(
                    BpmModelError,
                    f"initial value {init:g} of '{d.name.name}' violates its constraint "
                    f"{d.bound.op} {d.bound.value:g}",
                    d.span,
                )
                return None
        else:  # a neutral start: 1 for '> 0', else a step away from the bound
            init = _default_init(lower, upper)
        return ir.Param(d.name.name, lower, upper, None, init, span=d.span)

    # -------------------------------------------------------------- mechanisms

    def block_kind(self, thermo, kinetic) -> str | None:
        blocks = sorted([*thermo, *kinetic], key=lambda b: b.span.start)
        if not blocks:
            self.error(
                BpmModelError,
                "the model has no mechanism",
                self.tree.name.span,
                note="add a 'thermodynamic { ... }' or a 'kinetic { ... }' block",
            )
            return None
        if len(blocks) > 1:
            first = blocks[0]
            for extra in blocks[1:]:
                word = "thermodynamic" if isinstance(extra, ast.ThermoBlock) else "kinetic"
                self.error(
                    BpmModelError,
                    f"a second mechanism block ('{word}')",
                    _keyword(extra),
                    note=f"a model has exactly one thermodynamic or kinetic block; "
                    f"the first is at line {first.span.line}",
                )
            return None
        return "thermodynamic" if thermo else "kinetic"

    def thermo_states(self, block: ast.ThermoBlock) -> tuple[ir.State, ...]:
        seen: dict[str, Span] = {}
        states = []
        for decl in block.states:
            name = decl.name.name
            if name in seen:
                self.error(
                    BpmNameError,
                    f"state '{name}' is already declared (line {seen[name].line})",
                    decl.name.span,
                )
                continue
            seen[name] = decl.name.span
            form = self.linear(decl.energy, integer=True, what="a state energy")
            if form is not None:
                states.append(ir.State(name, form, span=decl.span))
        return tuple(states)

    def transitions(self, block: ast.KineticBlock) -> tuple[ir.Transition, ...]:
        out: list[ir.Transition] = []
        seen: dict[tuple[str, str], Span] = {}
        for decl in block.transitions:
            pairs = [(decl.source, decl.target, decl.rate)]
            if decl.reverse is not None:
                pairs.append((decl.target, decl.source, decl.reverse))
            for source, target, rate_expr in pairs:
                if source.name == target.name:
                    self.error(
                        BpmModelError,
                        f"transition from '{source.name}' to itself",
                        decl.span,
                        note="a self-loop does not change any occupancy; remove it",
                    )
                    break
                key = (source.name, target.name)
                if key in seen:
                    self.error(
                        BpmModelError,
                        f"transition {source.name} -> {target.name} is already declared "
                        f"(line {seen[key].line})",
                        decl.span,
                        note="add the rates into one transition instead",
                    )
                    continue
                seen[key] = decl.span
                rate = self.rate(rate_expr)
                if rate is not None:
                    out.append(ir.Transition(source.name, target.name, rate, span=decl.span))
        return tuple(out)

    def connectivity(self, block: ast.KineticBlock, transitions, states) -> None:
        """A unique steady state needs a strongly connected graph of states."""
        if self.errors or len(states) < 2:
            return
        graph = nx.DiGraph()
        graph.add_nodes_from(states)
        graph.add_edges_from((t.source, t.target) for t in transitions)
        if nx.is_strongly_connected(graph):
            return
        condensed = nx.condensation(graph)
        sinks = [c for c in condensed if condensed.out_degree(c) == 0]
        members = condensed.graph["mapping"]
        order = {s: i for i, s in enumerate(states)}

        def names(component_ids) -> list[str]:
            found = [s for s, c in members.items() if c in component_ids]
            return sorted(found, key=order.get)

        transient = names(set(condensed) - set(sinks))
        parts = ["the kinetic scheme has no unique steady state"]
        notes = []
        if len(sinks) > 1:
            groups = [
                ", ".join(names({c}))
                for c in sorted(sinks, key=lambda c: min(order[s] for s in names({c})))
            ]
            notes.append(
                "these groups of states are cut off from each other: "
                + "; ".join(f"{{{g}}}" for g in groups)
            )
        if transient:
            notes.append(
                "these states are transient (the scheme can leave them but never return): "
                + ", ".join(transient)
            )
        once = [s for s in states if sum(s in (t.source, t.target) for t in transitions) == 1]
        for s in once:
            hint = did_you_mean(s, [o for o in states if o != s])
            if hint:
                notes.append(f"state '{s}' appears only once{hint}")
        self.error(BpmModelError, parts[0], _keyword(block), note="; ".join(notes))

    def outputs(self, decls: list[ast.OutputDecl]) -> tuple[ir.Output, ...]:
        out = []
        seen: dict[str, Span] = {}
        for d in decls:
            name = d.name.name
            if name in seen:
                self.error(
                    BpmNameError,
                    f"output '{name}' is already declared (line {seen[name].line})",
                    d.name.span,
                )
                continue
            if name in self.declared:
                self.error(
                    BpmNameError,
                    f"output '{name}' has the name of a declared energy or parameter",
                    d.name.span,
                )
                continue
            seen[name] = d.name.span
            expr = self.expression(d.expr, allow_prob=True)
            if expr is not None:
                out.append(ir.Output(name, expr, span=d.span))
        return tuple(out)

    def unused(self, energies, params, sequence) -> None:
        for decl in (*energies, *params):
            if decl.name not in self.used:
                self.warnings.add(f"'{decl.name}' is declared but never used", decl.span)
        if sequence is not None and not any(isinstance(e, ir.SiteEnergy) for e in energies):
            self.warnings.add(
                f"sequence '{sequence.name}' is declared but no energy reads it", sequence.span
            )

    # ------------------------------------------------------------- expressions

    def lookup(self, name: ast.Name) -> ir.Ref | None:
        """A reference to an energy or parameter; an error (with a suggestion) otherwise."""
        if name.name in self.energies:
            self.used.add(name.name)
            return ir.Ref(name.name, "energy", span=name.span)
        if name.name in self.params:
            self.used.add(name.name)
            return ir.Ref(name.name, "param", span=name.span)
        if name.name in self.declared:  # declared, but its declaration had an error
            return None
        hint = did_you_mean(name.name, [*self.energies, *self.params])
        note = None
        if not hint and name.name in getattr(self, "states", ()):
            note = f"'{name.name}' is a state: write P({name.name}) for its probability"
        self.error(BpmNameError, f"unknown name '{name.name}'{hint}", name.span, note=note)
        return None

    def expression(self, e: ast.Expression, allow_prob: bool) -> ir.Expr | None:
        """Resolve an expression's names; None if any part is in error (already reported)."""
        match e:
            case ast.Number(value=value):
                return ir.Num(value, span=e.span)
            case ast.Name():
                return self.lookup(e)
            case ast.UnaryOp(op=op, operand=operand):
                inner = self.expression(operand, allow_prob)
                return None if inner is None else ir.Unary(op, inner, span=e.span)
            case ast.BinaryOp(op=op, left=left, right=right):
                a = self.expression(left, allow_prob)
                b = self.expression(right, allow_prob)
                return None if a is None or b is None else ir.Binary(op, a, b, span=e.span)
            case ast.Call(func=func, args=args):
                if func.name == "P":
                    return self.probability(e, allow_prob)
                if func.name not in FUNCTIONS:
                    hint = did_you_mean(func.name, [*FUNCTIONS, "P"])
                    self.error(BpmNameError, f"unknown function '{func.name}'{hint}", func.span)
                    return None
                if len(args) != FUNCTIONS[func.name]:
                    self.error(
                        BpmModelError,
                        f"{func.name}() takes {FUNCTIONS[func.name]} argument, not {len(args)}",
                        e.span,
                    )
                    return None
                values = [self.expression(a, allow_prob) for a in args]
                if any(v is None for v in values):
                    return None
                return ir.Call(func.name, tuple(values), span=e.span)
        raise TypeError(f"not an expression: {e!r}")

    def probability(self, e: ast.Call, allow_prob: bool) -> ir.Prob | None:
        if not allow_prob:
            self.error(
                BpmModelError,
                "P() can only be used in outputs",
                e.span,
                note="state energies and rates cannot depend on occupancies",
            )
            return None
        if len(e.args) != 1 or not isinstance(e.args[0], ast.Name):
            self.error(BpmModelError, "P() takes one state name, like P(rnap)", e.span)
            return None
        state = e.args[0]
        if state.name not in self.states:
            if not self.states:
                return None  # the mechanism itself is in error, already reported
            hint = did_you_mean(state.name, self.states)
            self.error(BpmNameError, f"unknown state '{state.name}'{hint}", state.span)
            return None
        return ir.Prob(state.name, span=e.span)

    def linear(self, e: ast.Expression, integer: bool, what: str) -> ir.LinearForm | None:
        """``e`` as constant + sum(coef * energy); errors say why it is not one."""
        expr = self.expression(e, allow_prob=False)
        if expr is None:
            return None
        try:
            coefs, constant = _linear(expr, allow=lambda r: r.kind == "energy")
        except _NotLinear as bad:
            self.error(BpmModelError, f"{what} must be {bad.reason}", bad.span, note=_LINEAR_NOTE)
            return None
        if integer:
            for name, c in coefs.items():
                if c != round(c):
                    self.error(
                        BpmModelError,
                        f"{what} must combine energies with whole-number coefficients; "
                        f"'{name}' has {c:g}",
                        e.span,
                        note="a state's energy counts each interaction a whole number of times",
                    )
                    return None
        return ir.LinearForm.of(
            {n: float(round(c)) if integer else c for n, c in coefs.items()}, constant
        )

    def rate(self, e: ast.Expression) -> ir.Rate | None:
        """A rate as a monomial; its logarithm as a linear form."""
        expr = self.expression(e, allow_prob=False)
        if expr is None:
            return None
        try:
            coefs, constant = _log_rate(expr, self.params)
        except _NotLinear as bad:
            self.error(BpmModelError, f"a rate must be {bad.reason}", bad.span, note=_RATE_NOTE)
            return None
        return ir.Rate(expr, ir.LinearForm.of(coefs, constant))


_LINEAR_NOTE = "for example: G_C + G_R + G_I, or 0 for the reference state"
_RATE_NOTE = (
    "a rate is a product of positive parameters and numbers and exp(...) of energies, "
    "for example: k_on * exp(-G_R)"
)


class _NotLinear(Exception):
    def __init__(self, reason: str, span: Span):
        self.reason, self.span = reason, span


def _constant(expr: ir.Expr) -> float | None:
    """The value of an expression made only of numbers, else None."""
    match expr:
        case ir.Num(value=v):
            return v
        case ir.Unary(op=op, operand=x):
            v = _constant(x)
            return None if v is None else (-v if op == "-" else v)
        case ir.Binary(op=op, left=a, right=b):
            x, y = _constant(a), _constant(b)
            if x is None or y is None:
                return None
            try:
                value = {"+": x + y, "-": x - y, "*": x * y}.get(op)
                if op == "/":
                    value = x / y
                elif op == "^":
                    value = float(x**y)
            except (ZeroDivisionError, OverflowError, TypeError):
                return None
            return value if value is not None and math.isfinite(value) else None
        case ir.Call(func=f, args=(a,)):
            v = _constant(a)
            try:
                return (
                    None
                    if v is None
                    else {"exp": math.exp, "log": math.log, "sqrt": math.sqrt}[f](v)
                )
            except (ValueError, OverflowError):
                return None
    return None


def _combine(a, b, sign: float) -> tuple[dict[str, float], float]:
    """``a + sign * b`` for (coefficients, constant) pairs."""
    merged = dict(a[0])
    for name, c in b[0].items():
        merged[name] = merged.get(name, 0.0) + sign * c
    return merged, a[1] + sign * b[1]


def _linear(expr: ir.Expr, allow: Callable[[ir.Ref], bool]) -> tuple[dict[str, float], float]:
    """Coefficients and constant of an expression linear in the allowed references."""
    value = _constant(expr)
    if value is not None:
        return {}, value
    match expr:
        case ir.Ref() if allow(expr):
            return {expr.name: 1.0}, 0.0
        case ir.Ref():
            raise _NotLinear(f"a combination of energies; '{expr.name}' is a parameter", expr.span)
        case ir.Unary(op=op, operand=x):
            coefs, const = _linear(x, allow)
            sign = -1.0 if op == "-" else 1.0
            return {n: sign * c for n, c in coefs.items()}, sign * const
        case ir.Binary(op=op, left=a, right=b) if op in "+-":
            return _combine(_linear(a, allow), _linear(b, allow), 1.0 if op == "+" else -1.0)
        case ir.Binary(op="*", left=a, right=b):
            for factor, other in ((a, b), (b, a)):
                k = _constant(factor)
                if k is not None:
                    coefs, const = _linear(other, allow)
                    return {n: k * c for n, c in coefs.items()}, k * const
        case ir.Binary(op="/", left=a, right=b):
            k = _constant(b)
            if k:
                coefs, const = _linear(a, allow)
                return {n: c / k for n, c in coefs.items()}, const / k
    raise _NotLinear("a sum of energies times numbers", expr.span)


def _log_rate(expr: ir.Expr, params: dict[str, ir.Param]) -> tuple[dict[str, float], float]:
    """``log(rate)`` as coefficients of ``log:<param>`` and of energies, plus a constant."""
    value = _constant(expr)
    if value is not None:
        if not value > 0:
            raise _NotLinear(f"positive; this factor is {value:g}", expr.span)
        return {}, math.log(value)
    match expr:
        case ir.Ref(kind="param", name=name):
            if not params[name].positive:
                raise _NotLinear(
                    f"positive; declare '{name}' with '> 0' to use it in a rate", expr.span
                )
            return {f"log:{name}": 1.0}, 0.0
        case ir.Ref(kind="energy", name=name):
            raise _NotLinear(f"positive; an energy enters a rate as exp(-{name})", expr.span)
        case ir.Call(func="exp", args=(arg,)):
            return _linear(arg, allow=lambda r: r.kind == "energy")
        case ir.Call(func="sqrt", args=(arg,)):
            coefs, const = _log_rate(arg, params)
            return {n: c / 2 for n, c in coefs.items()}, const / 2
        case ir.Unary(op="+", operand=x):
            return _log_rate(x, params)
        case ir.Binary(op=op, left=a, right=b) if op in "*/":
            sign = 1.0 if op == "*" else -1.0
            return _combine(_log_rate(a, params), _log_rate(b, params), sign)
        case ir.Binary(op="^", left=a, right=b):
            k = _constant(b)
            if k is None:
                raise _NotLinear("raised to a number, not to an expression", b.span)
            coefs, const = _log_rate(a, params)
            return {n: k * c for n, c in coefs.items()}, k * const
        case ir.Unary(op="-"):
            raise _NotLinear("positive; it cannot be negated", expr.span)
        case ir.Binary(op=op) if op in "+-":
            raise _NotLinear(
                "a product, not a sum: write parallel paths as separate states", expr.span
            )
    raise _NotLinear("a product of parameters, numbers and exp(...)", expr.span)


def _default_init(lower: float | None, upper: float | None) -> float:
    """Where a learned parameter starts without ``init``: strictly inside its bound.

    >>> _default_init(0.0, None), _default_init(None, 100.0), _default_init(1e300, None)
    (1.0, 0.0, 2e+300)
    """
    if lower is None and upper is None:
        return 0.0
    bound, direction = (lower, 1.0) if lower is not None else (upper, -1.0)
    step = max(1.0, abs(bound))
    value = bound + direction * step
    return value if math.isfinite(value) else math.nextafter(bound, direction * math.inf)


def _within(value: float, lower: float | None, upper: float | None) -> bool:
    return (lower is None or value > lower) and (upper is None or value < upper)


def _keyword(block: ast.ThermoBlock | ast.KineticBlock) -> Span:
    """The span of a block's opening keyword, where its errors point."""
    width = len("thermodynamic" if isinstance(block, ast.ThermoBlock) else "kinetic")
    s = block.span
    return Span(s.start, s.start + width, s.line, s.column, s.line, s.column + width)


def _statements_of(tree: ast.ModelFile):
    def of(cls):
        return [s for s in tree.statements if isinstance(s, cls)]

    return of


def check(tree: ast.ModelFile, source: Source | None = None) -> tuple[ir.Model, Warnings]:
    """The IR of a parsed model and its warnings; raises one error listing every problem."""
    checker = _Checker(tree)
    model = checker.run()
    if checker.errors or model is None:
        raise BpmErrors.collect(checker.errors, source)
    return model, checker.warnings
