"""Text to AST: the lark parser, its errors in plain words, and the way back (unparse).

>>> tree = parse("model m  param k > 0  kinetic { a <-> b : k, 1 }  output v = P(a)")
>>> tree.name.name
'm'
"""

from __future__ import annotations

import functools
import importlib.resources
import inspect
import textwrap

import lark
from lark import Token, Transformer, v_args

from . import ast, printing
from .errors import BpmSyntaxError, Source, Span
from .limits import check_depth, deep_recursion
from .printing import source_number

# Lark's terminal names, as a person would say them.
_TOKEN_WORDS = {
    "NAME": "a name",
    "INT": "a whole number",
    "NUMBER": "a number",
    "SIGN": "a sign",
    "STRING": "a string",
    "TEMP_UNIT": "'C' or 'K'",
    "ENERGY_UNIT": "'kT' or 'kcal/mol'",
    "BOUND_OP": "'>' or '<'",
    "POW": "'^'",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "COLON": "':'",
    "COMMA": "','",
    "EQUAL": "'='",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "MORETHAN": "'>'",
    "LESSTHAN": "'<'",
    "$END": "the end of the file",
}


@functools.cache
def _parser() -> lark.Lark:
    grammar = importlib.resources.files("bpm.grammar").joinpath("bpm.lark").read_text()
    return lark.Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True)


def _words(name: str) -> str:
    if name in _TOKEN_WORDS:
        return _TOKEN_WORDS[name]
    pattern = _parser().get_terminal(name).pattern
    if isinstance(pattern, lark.lexer.PatternStr):
        return f"'{pattern.value}'"
    return name.lower()


def _expected(names: set[str]) -> str:
    words = sorted({_words(n) for n in names if not n.startswith("_")} or {"something else"})
    if len(words) > 6:
        words = words[:6] + ["..."]
    return words[0] if len(words) == 1 else "one of " + ", ".join(words)


def _token_text(token: Token) -> str:
    if token.type == "$END":
        return "the end of the file"
    return f"'{token.value}'" if len(token.value) <= 30 else f"'{token.value[:27]}...'"


def _syntax_error(error: lark.exceptions.UnexpectedInput, source: Source) -> BpmSyntaxError:
    text = source.text
    start = getattr(error, "pos_in_stream", None)
    if isinstance(error, lark.exceptions.UnexpectedToken) and error.token.type != "$END":
        start = error.token.start_pos
        span = Span.at(text, start, error.token.end_pos or start + 1)
        expected = _accepted(error)
        message = f"unexpected {_token_text(error.token)}: expected {_expected(expected)}"
        hint = _hint(error.token, expected)
    elif isinstance(error, lark.exceptions.UnexpectedCharacters):
        span = Span.at(text, error.pos_in_stream, error.pos_in_stream + 1)
        message = f"unexpected character '{text[error.pos_in_stream]}'"
        hint = "names are letters, digits and '_'; comments start with '#'"
    else:  # the end of the file came too early
        end = len(text.rstrip())
        span = Span.at(text, end, end)
        expected = _accepted(error)
        message = "unexpected end of file" + (
            f": expected {_expected(expected)}" if expected else ""
        )
        hint = None
    return BpmSyntaxError(message, span, source=source, note=hint)


def _accepted(error: lark.exceptions.UnexpectedInput) -> set[str]:
    """The terminals the parser could really take here.

    LALR merges look-ahead sets, so ``error.expected`` can list tokens that would
    fail one step later; the interactive parser tries each one.
    """
    parser = getattr(error, "interactive_parser", None)
    if parser is not None:
        try:
            return set(parser.accepts())
        except Exception:  # pragma: no cover - lark internals; fall back below
            pass
    return set(getattr(error, "expected", None) or ())


def _hint(token: Token, expected: set[str]) -> str | None:
    """A sentence for mistakes people are known to make."""
    if token.value == "}" and "COMMA" in expected:
        return "'<->' takes two rates: forward, then reverse"
    if token.value == "=" and "COLON" in expected:
        return "states and transitions use ':' before their energy or rate"
    if token.value in {"model"}:
        return "a file holds exactly one model"
    if token.type == "NUMBER" and "INT" in expected:
        return "slices and lengths are whole numbers"
    if "model" in {_words(n).strip("'") for n in expected}:
        return "a model file starts with 'model NAME'"
    return None


def parse(text: str, name: str = "<string>") -> ast.ModelFile:
    """Parse model text into its AST; raises :class:`BpmSyntaxError` with a position."""
    if text.startswith("\ufeff"):  # a byte-order mark: read as a space, positions kept
        text = " " + text[1:]
    source = Source(text, name)
    try:
        tree = _parser().parse(text)
    except lark.exceptions.UnexpectedInput as error:
        raise _syntax_error(error, source) from None
    try:
        check_depth(tree, text)
    except BpmSyntaxError as error:
        raise error.with_source(source) from None
    try:
        with deep_recursion():
            return _ToAst(text).transform(tree)
    except lark.exceptions.VisitError as error:
        if isinstance(error.orig_exc, BpmSyntaxError):
            raise error.orig_exc.with_source(source) from None
        raise


def _span(text: str, meta) -> Span:
    return Span(
        meta.start_pos, meta.end_pos, meta.line, meta.column, meta.end_line, meta.end_column
    )


def _tok_span(token: Token) -> Span:
    return Span(
        token.start_pos, token.end_pos, token.line, token.column, token.end_line, token.end_column
    )


def _name(token: Token) -> ast.Name:
    return ast.Name(str(token), span=_tok_span(token))


def _int(token: Token) -> int:
    return int(str(token))


def _float(token: Token) -> float:
    value = float(str(token))
    if value != value or value in (float("inf"), float("-inf")):
        raise BpmSyntaxError(f"number '{token}' is out of range", _tok_span(token))
    return value


@v_args(meta=True, inline=True)
class _ToAst(Transformer):
    """Lark's parse tree to :mod:`bpm.compiler.ast` nodes."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def s(self, meta) -> Span:
        return _span(self.text, meta)

    # statements
    def start(self, meta, model, *statements):
        name, doc = model
        return ast.ModelFile(name, doc, tuple(statements), span=self.s(meta))

    def model_decl(self, meta, name, doc=None):
        return _name(name), doc

    def docstring(self, meta, token):
        raw = str(token)
        body = raw[3:-3] if raw.startswith('"""') else raw[1:-1]
        return inspect.cleandoc(textwrap.dedent(body)) or None

    def sequence_decl(self, meta, name, alphabet, length, numbering=None):
        letters, custom = alphabet
        return ast.SequenceDecl(
            _name(name), letters, custom, _int(length), numbering, span=self.s(meta)
        )

    def numbering(self, meta, first, last, reference=None):
        (a, a_span), (b, b_span) = first, last
        return ast.Numbering(a, b, reference, span=self.s(meta), first_span=a_span,
                             last_span=b_span)  # fmt: skip

    def reference(self, meta, token):
        text = str(token)[1:-1] if token.type == "STRING" else str(token)
        if '"' in text:  # a triple-quoted string
            raise BpmSyntaxError("a reference is a name or a one-line string", _tok_span(token),
                                 note="like TSS or \"5' splice site\"")  # fmt: skip
        return text

    def signed_int(self, meta, *tokens):
        sign = -1 if len(tokens) == 2 and str(tokens[0]) == "-" else 1
        return sign * _int(tokens[-1]), self.s(meta)

    def named_alphabet(self, meta, token):
        return str(token), False

    def custom_alphabet(self, meta, token):
        return str(token)[1:-1], True

    def temperature_decl(self, meta, value, unit):
        return ast.TemperatureDecl(value, str(unit), span=self.s(meta))

    def energy_decl(self, meta, name, value=None):
        kind, payload = value if value is not None else (None, None)
        return ast.EnergyDecl(
            _name(name),
            site=payload if kind == "site" else None,
            fixed=payload if kind == "fixed" else None,
            init=payload if kind == "init" else None,
            span=self.s(meta),
        )

    def site_value(self, meta, site):
        return "site", site

    def fixed_value(self, meta, value):
        return "fixed", value

    def init_value(self, meta, value):
        return "init", value

    def site(self, meta, kind, sliced):
        sequence, start, stop, revcomp = sliced
        return ast.Site(_name(kind), sequence, start, stop, revcomp, span=self.s(meta))

    def forward_slice(self, meta, name, start, stop):
        return _name(name), _int(start), _int(stop), False

    def revcomp_slice(self, meta, name, start, stop):
        return _name(name), _int(start), _int(stop), True

    def quantity(self, meta, value, unit=None):
        return ast.Quantity(value, None if unit is None else str(unit), span=self.s(meta))

    def param_decl(self, meta, name, *rest):
        bound = next((r for r in rest if isinstance(r, ast.Bound)), None)
        values = dict(r for r in rest if isinstance(r, tuple))
        return ast.ParamDecl(
            _name(name), bound, values.get("fixed"), values.get("init"), span=self.s(meta)
        )

    def bound(self, meta, op, value):
        return ast.Bound(str(op), value, span=self.s(meta))

    def signed_number(self, meta, *tokens):
        sign = -1.0 if len(tokens) == 2 and str(tokens[0]) == "-" else 1.0
        return sign * _float(tokens[-1])

    def thermo_block(self, meta, *states):
        return ast.ThermoBlock(tuple(states), span=self.s(meta))

    def state(self, meta, name, energy):
        return ast.StateDecl(_name(name), energy, span=self.s(meta))

    def kinetic_block(self, meta, *transitions):
        return ast.KineticBlock(tuple(transitions), span=self.s(meta))

    def irreversible(self, meta, source, target, rate):
        return ast.TransitionDecl(_name(source), _name(target), rate, None, span=self.s(meta))

    def reversible(self, meta, source, target, rate, reverse):
        return ast.TransitionDecl(_name(source), _name(target), rate, reverse, span=self.s(meta))

    def output_decl(self, meta, name, expr):
        return ast.OutputDecl(_name(name), expr, span=self.s(meta))

    # expressions
    def _binary(op):  # noqa: N805 - a factory used in the class body
        def rule(self, meta, left, right):
            return ast.BinaryOp(op, left, right, span=self.s(meta))

        return rule

    add, sub, mul, div = _binary("+"), _binary("-"), _binary("*"), _binary("/")

    def pow(self, meta, left, op, right):
        return ast.BinaryOp("^", left, right, span=self.s(meta))

    def neg(self, meta, operand):
        return ast.UnaryOp("-", operand, span=self.s(meta))

    def pos(self, meta, operand):
        return ast.UnaryOp("+", operand, span=self.s(meta))

    def number(self, meta, token):
        return ast.Number(_float(token), str(token), span=_tok_span(token))

    def name(self, meta, token):
        return _name(token)

    def call(self, meta, func, *args):
        return ast.Call(_name(func), tuple(args), span=self.s(meta))


# ------------------------------------------------------------------ unparse


def unparse_expr(expr: ast.Expression, parent: int = 0) -> str:
    """Expression text with only the parentheses that precedence needs."""
    return printing.format_expression(expr, ast.shape_of, printing.SOURCE, parent)


def unparse(tree: ast.ModelFile) -> str:
    """Model text that parses back to an equal tree (comments and layout are not kept)."""
    lines = [f"model {tree.name.name}"]
    if tree.doc:
        lines.append(f'"""\n{tree.doc}\n"""')
    for st in tree.statements:
        lines.append(_unparse_statement(st))
    return "\n".join(lines) + "\n"


def _unparse_statement(st: ast.Statement) -> str:
    match st:
        case ast.SequenceDecl():
            alphabet = f'"{st.alphabet}"' if st.custom else st.alphabet
            out = f"sequence {st.name.name}: {alphabet}[{st.length}]"
            if st.numbering is not None:
                n = st.numbering
                out += f" positions {n.first} to {n.last}"
                if n.reference is not None:
                    plain = n.reference.isidentifier() and n.reference.isascii()
                    out += " relative to " + (n.reference if plain else f'"{n.reference}"')
            return out
        case ast.TemperatureDecl():
            return f"temperature {source_number(st.value)} {st.unit}"
        case ast.EnergyDecl():
            out = f"energy {st.name.name}"
            if st.site is not None:
                s = st.site
                inner = f"{s.sequence.name}[{s.start}:{s.stop}]"
                inner = f"revcomp({inner})" if s.revcomp else inner
                out += f" = {s.kind.name}({inner})"
            for word, q in (("=", st.fixed), ("init", st.init)):
                if q is not None:
                    out += f" {word} {source_number(q.value)}" + (f" {q.unit}" if q.unit else "")
            return out
        case ast.ParamDecl():
            out = f"param {st.name.name}"
            if st.bound is not None:
                out += f" {st.bound.op} {source_number(st.bound.value)}"
            if st.fixed is not None:
                out += f" = {source_number(st.fixed)}"
            if st.init is not None:
                out += f" init {source_number(st.init)}"
            return out
        case ast.ThermoBlock():
            body = "".join(f"\n    {s.name.name} : {unparse_expr(s.energy)}" for s in st.states)
            return f"thermodynamic {{{body}\n}}"
        case ast.KineticBlock():
            rows = []
            for t in st.transitions:
                arrow = "->" if t.reverse is None else "<->"
                rate = unparse_expr(t.rate)
                if t.reverse is not None:
                    rate += f", {unparse_expr(t.reverse)}"
                rows.append(f"\n    {t.source.name} {arrow} {t.target.name} : {rate}")
            return f"kinetic {{{''.join(rows)}\n}}"
        case ast.OutputDecl():
            return f"output {st.name.name} = {unparse_expr(st.expr)}"
    raise TypeError(f"not a statement: {st!r}")
