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

from . import ast, ir
from .check_declarations import DeclarationChecks
from .check_mechanism import MechanismChecks
from .check_numbers import constant_problem, too_large
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
from .linear_forms import NotLinear, linear, log_rate

FUNCTIONS = {"exp": 1, "log": 1, "sqrt": 1}


class _Checker(DeclarationChecks, MechanismChecks):
    """Walks one model file, filling ``errors`` and ``warnings``.

    Declarations and the mechanism block are checked by the mixins; outputs and
    expressions (names, ``P(state)``, linear forms, rates) here.
    """

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
            self.steady_state(kinetic[0], transitions, states)
        self.states = set(states)
        outputs = self.outputs(of(ast.OutputDecl))
        if not of(ast.OutputDecl):
            self.error(
                BpmModelError,
                f"model {tree.name.name} has no output",
                tree.name.span,
                note="a model says what it predicts, like: output t = P(bound)",
            )
        self.collisions(energies, params)
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

    # ---------------------------------------------------------------- outputs

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
        """Resolve an expression's names and check its constants (:mod:`.check_numbers`);
        None if any part is in error (already reported)."""
        expr = self.resolve(e, allow_prob)
        if expr is None:
            return None
        problem = constant_problem(expr)
        if problem is not None:
            self.error(BpmModelError, problem[0], problem[1])
            return None
        return expr

    def resolve(self, e: ast.Expression, allow_prob: bool) -> ir.Expr | None:
        """Resolve an expression's names; None if any part is in error (already reported)."""
        match e:
            case ast.Number(value=value):
                return ir.Num(value, span=e.span)
            case ast.Name():
                return self.lookup(e)
            case ast.UnaryOp(op=op, operand=operand):
                inner = self.resolve(operand, allow_prob)
                return None if inner is None else ir.Unary(op, inner, span=e.span)
            case ast.BinaryOp(op=op, left=left, right=right):
                a = self.resolve(left, allow_prob)
                b = self.resolve(right, allow_prob)
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
                values = [self.resolve(a, allow_prob) for a in args]
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
            coefs, constant = linear(expr, allow=lambda r: r.kind == "energy")
        except NotLinear as bad:
            self.error(BpmModelError, f"{what} must be {bad.reason}", bad.span, note=_LINEAR_NOTE)
            return None
        if any(too_large(c) for c in (*coefs.values(), constant)):
            self.error(
                BpmModelError,
                f"{what} has a coefficient too large for the module",
                e.span,
                note="float32 holds at most 3.4e38",
            )
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
            coefs, constant = log_rate(expr, self.params)
        except NotLinear as bad:
            self.error(BpmModelError, f"a rate must be {bad.reason}", bad.span, note=_RATE_NOTE)
            return None
        if any(too_large(c) for c in (*coefs.values(), constant)):
            self.error(
                BpmModelError,
                "this rate is too large or too small for the module",
                e.span,
                note="its logarithm's coefficients must be finite float32 numbers",
            )
            return None
        return ir.Rate(expr, ir.LinearForm.of(coefs, constant))


_LINEAR_NOTE = "for example: G_C + G_R + G_I, or 0 for the reference state"
_RATE_NOTE = (
    "a rate is a product of positive parameters and numbers and exp(...) of energies, "
    "for example: k_on * exp(-G_R)"
)


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
