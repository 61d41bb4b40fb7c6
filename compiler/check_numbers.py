"""Constants a generated module cannot hold: found at check time, with a position.

The module computes in float32 by default, so every number it stores (a literal,
a fixed value, a bound, a constant part of an expression) must be finite and at
most :data:`FLOAT32_MAX` in size, and a constant part of an expression must have
a real value: no division by zero, no ``log`` of a number at or below zero, no
``sqrt`` of a negative number, no negative number to a fractional power.

>>> from bpm.compiler.errors import Span
>>> at = Span(0, 1, 1, 1, 1, 2)
>>> expr = ir.Call("log", (ir.Num(0.0, span=at),), span=at)
>>> constant_problem(expr)[0]
'log of 0 (a constant): the value is not a real number'
"""

from __future__ import annotations

import math

from . import ir
from .errors import Span

FLOAT32_MAX = 3.4028234663852886e38
"""The largest float32; a stored constant beyond it would be infinite in the module."""


class ConstantProblem(Exception):
    """A constant sub-expression without a finite float32 value: the message and where."""

    def __init__(self, message: str, span: Span):
        self.message, self.span = message, span
        super().__init__(message)


def too_large(value: float) -> bool:
    """True for values float32 cannot hold (infinite, NaN or beyond :data:`FLOAT32_MAX`)."""
    return not math.isfinite(value) or abs(value) > FLOAT32_MAX


def constant_problem(expr: ir.Expr) -> tuple[str, Span] | None:
    """The first constant part of ``expr`` with no finite real value, as (message, span)."""
    try:
        _value(expr)
    except ConstantProblem as problem:
        return problem.message, problem.span
    return None


def _value(expr: ir.Expr) -> float | None:
    """The value of a constant expression (``None`` when it reads a name or ``P``)."""
    match expr:
        case ir.Num(value=value):
            return _checked(value, expr.span, "the number")
        case ir.Ref() | ir.Prob():
            return None
        case ir.Unary(op=op, operand=operand):
            inner = _value(operand)
            return None if inner is None else (-inner if op == "-" else inner)
        case ir.Binary(op=op, left=left, right=right):
            return _binary(op, _value(left), _value(right), expr.span)
        case ir.Call(func=func, args=(arg,)):
            return _call(func, _value(arg), expr.span)
    return None


def _binary(op: str, a: float | None, b: float | None, span: Span) -> float | None:
    if op == "/" and b == 0:
        raise ConstantProblem("division by zero (a constant)", span)
    if op == "/" and b is not None and too_large(1.0 / b):
        # the closed form multiplies by 1/b, which the module cannot hold
        raise ConstantProblem(
            f"division by {b:g} (a constant): its reciprocal is too large for the module "
            "(float32 holds at most 3.4e38)",
            span,
        )
    if a is None or b is None:
        return None
    if op == "^":
        if a < 0 and b != round(b):
            raise ConstantProblem(
                f"{a:g} ^ {b:g}: a negative number to a fractional power is not real", span
            )
        if a == 0 and b < 0:
            raise ConstantProblem(f"0 ^ {b:g}: division by zero (a constant)", span)
        try:
            value = math.pow(a, b)
        except OverflowError:
            value = math.inf
    else:
        value = {"+": a + b, "-": a - b, "*": a * b}.get(op) if op != "/" else a / b
    return _checked(value, span, "this constant")


def _call(func: str, x: float | None, span: Span) -> float | None:
    if x is None:
        return None
    if func == "log" and x <= 0:
        raise ConstantProblem(f"log of {x:g} (a constant): the value is not a real number", span)
    if func == "sqrt" and x < 0:
        raise ConstantProblem(f"sqrt of {x:g} (a constant): the value is not a real number", span)
    if func == "exp":
        value = math.exp(x) if x < 710 else math.inf
    else:
        value = math.log(x) if func == "log" else math.sqrt(x)
    return _checked(value, span, "this constant")


def _checked(value: float, span: Span, what: str) -> float:
    if too_large(value):
        shown = f"{value:g}" if math.isfinite(value) else "beyond any float"
        raise ConstantProblem(
            f"{what} ({shown}) is too large for the module (float32 holds at most 3.4e38)", span
        )
    return value
