"""Fuzzing the front end: whatever the text, only a BpmError ever escapes."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpm.compiler import ast
from bpm.compiler.errors import BpmError
from bpm.compiler.parse import parse, unparse, unparse_expr
from bpm.compiler.pipeline import to_ir

MODELS = [p.read_text() for p in sorted((Path(__file__).parent.parent / "models").glob("*.bpm"))]
TOKENS = [
    "model",
    "sequence",
    "energy",
    "param",
    "output",
    "thermodynamic",
    "kinetic",
    "temperature",
    "init",
    "matrix",
    "pairwise",
    "neighbor",
    "revcomp",
    "dna",
    "rna",
    "protein",
    "P",
    "exp",
    "log",
    "sqrt",
    "x",
    "G",
    "k",
    "a",
    "b",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    ",",
    "=",
    ">",
    "<",
    "->",
    "<->",
    "+",
    "-",
    "*",
    "/",
    "^",
    "**",
    "0",
    "1",
    "27",
    "75",
    "-3.3",
    "1e300",
    "1e999",
    '"ACGT"',
    '"""doc"""',
    "kT",
    "kcal/mol",
    "C",
    "K",
    "#",
    "\n",
    " ",
    "\t",
    "@",
    "é",
]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def compile_front_end(text: str) -> None:
    try:
        to_ir(text, "fuzz.bpm")
    except BpmError as error:
        error.render()  # rendering must not fail either


@FUZZ
@given(st.text(max_size=200))
def test_random_text(text):
    compile_front_end(text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=60))
def test_random_token_soup(tokens):
    compile_front_end(" ".join(tokens))


@st.composite
def mutated_models(draw):
    text = draw(st.sampled_from(MODELS))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 20)))
        edit = draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        if edit == "delete":
            text = text[:i] + text[j:]
        elif edit == "insert":
            text = text[:i] + " " + draw(st.sampled_from(TOKENS)) + " " + text[i:]
        elif edit == "replace":
            text = text[:i] + draw(st.sampled_from(TOKENS)) + text[j:]
        else:
            text = text[:j] + text[i:j] + text[j:]
    return text


@FUZZ
@given(mutated_models())
def test_mutated_models(text):
    compile_front_end(text)


@FUZZ
@given(mutated_models())
def test_whatever_parses_round_trips(text):
    try:
        tree = parse(text)
    except BpmError:
        return
    assert parse(unparse(tree)) == tree


names = st.sampled_from(["a", "b", "k_on", "G_R"])
numbers = st.sampled_from(["0", "1", "2.5", "1e-3", "10"])


def expressions():
    leaves = st.one_of(
        names.map(lambda n: ast.Name(n, span=None)),
        numbers.map(lambda t: ast.Number(float(t), t, span=None)),
    )

    def extend(children):
        return st.one_of(
            st.tuples(st.sampled_from("+-*/^"), children, children).map(
                lambda t: ast.BinaryOp(t[0], t[1], t[2], span=None)
            ),
            st.tuples(st.sampled_from("-+"), children).map(
                lambda t: ast.UnaryOp(t[0], t[1], span=None)
            ),
            st.tuples(st.sampled_from(["exp", "P"]), children).map(
                lambda t: ast.Call(ast.Name(t[0], span=None), (t[1],), span=None)
            ),
        )

    return st.recursive(leaves, extend, max_leaves=12)


@FUZZ
@given(expressions())
def test_expressions_round_trip(expr):
    text = f"model m output t = {unparse_expr(expr)}"
    assert parse(text).statements[0].expr == expr


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_models())
def test_mutated_models_compile_to_modules(text):
    """Whatever passes the checks derives, generates and compiles, or says why in a BpmError."""
    from bpm.compiler.pipeline import compile as compile_model

    try:
        compile_model(text, "torch", "fuzz.bpm")
    except BpmError as error:
        error.render()
