"""Linear forms: IR expressions read as ``constant + sum(coefficient * name)``, and their sums.

A state energy is a linear form in the energies; the logarithm of a rate is a
linear form in the energies and ``log:<param>`` (see :class:`bpm.compiler.ir.LinearForm`).
The checker reads both off the IR expressions with :func:`linear` and
:func:`log_rate`, which raise :class:`NotLinear` saying why an expression is not
one; the kinetic modules add them up with :func:`add_forms`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from . import ir
from .errors import Span


def add_forms(forms: Iterable[ir.LinearForm], sign: float = 1.0) -> ir.LinearForm:
    """``sign * sum(forms)`` with coefficients that cancel (to 1e-12) dropped."""
    total: dict[str, float] = {}
    constant = 0.0
    for form in forms:
        constant += sign * form.constant
        for name, coef in form.terms:
            total[name] = total.get(name, 0.0) + sign * coef
    return ir.LinearForm.of({n: c for n, c in total.items() if abs(c) > _TOL}, constant)


_TOL = 1e-12


def negate(form: ir.LinearForm) -> ir.LinearForm:
    """``-form``."""
    return add_forms([form], sign=-1.0)


class NotLinear(Exception):
    """An expression is not the linear form asked for; ``reason`` completes \"must be ...\"."""

    def __init__(self, reason: str, span: Span):
        self.reason, self.span = reason, span


def constant_value(expr: ir.Expr) -> float | None:
    """The value of an expression made only of numbers (finite), else None."""
    match expr:
        case ir.Num(value=v):
            return v
        case ir.Unary(op=op, operand=x):
            v = constant_value(x)
            return None if v is None else (-v if op == "-" else v)
        case ir.Binary(op=op, left=a, right=b):
            x, y = constant_value(a), constant_value(b)
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
            v = constant_value(a)
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


def linear(expr: ir.Expr, allow: Callable[[ir.Ref], bool]) -> tuple[dict[str, float], float]:
    """Coefficients and constant of an expression linear in the allowed references.

    Raises :class:`NotLinear` (with the span of the offending part) otherwise.
    """
    value = constant_value(expr)
    if value is not None:
        return {}, value
    match expr:
        case ir.Ref() if allow(expr):
            return {expr.name: 1.0}, 0.0
        case ir.Ref():
            raise NotLinear(f"a combination of energies; '{expr.name}' is a parameter", expr.span)
        case ir.Unary(op=op, operand=x):
            coefs, const = linear(x, allow)
            sign = -1.0 if op == "-" else 1.0
            return {n: sign * c for n, c in coefs.items()}, sign * const
        case ir.Binary(op=op, left=a, right=b) if op in "+-":
            return _combine(linear(a, allow), linear(b, allow), 1.0 if op == "+" else -1.0)
        case ir.Binary(op="*", left=a, right=b):
            for factor, other in ((a, b), (b, a)):
                k = constant_value(factor)
                if k is not None:
                    coefs, const = linear(other, allow)
                    return {n: k * c for n, c in coefs.items()}, k * const
        case ir.Binary(op="/", left=a, right=b):
            k = constant_value(b)
            if k:
                coefs, const = linear(a, allow)
                return {n: c / k for n, c in coefs.items()}, const / k
    raise NotLinear("a sum of energies times numbers", expr.span)


def log_rate(expr: ir.Expr, params: dict[str, ir.Param]) -> tuple[dict[str, float], float]:
    """``log(rate)`` as coefficients of ``log:<param>`` and of energies, plus a constant.

    Raises :class:`NotLinear` when the rate is not a positive monomial.
    """
    value = constant_value(expr)
    if value is not None:
        if not value > 0:
            raise NotLinear(f"positive; this factor is {value:g}", expr.span)
        return {}, math.log(value)
    match expr:
        case ir.Ref(kind="param", name=name):
            if not params[name].positive:
                raise NotLinear(
                    f"positive; declare '{name}' with '> 0' to use it in a rate", expr.span
                )
            return {f"log:{name}": 1.0}, 0.0
        case ir.Ref(kind="energy", name=name):
            raise NotLinear(f"positive; an energy enters a rate as exp(-{name})", expr.span)
        case ir.Call(func="exp", args=(arg,)):
            return linear(arg, allow=lambda r: r.kind == "energy")
        case ir.Call(func="sqrt", args=(arg,)):
            coefs, const = log_rate(arg, params)
            return {n: c / 2 for n, c in coefs.items()}, const / 2
        case ir.Unary(op="+", operand=x):
            return log_rate(x, params)
        case ir.Binary(op=op, left=a, right=b) if op in "*/":
            sign = 1.0 if op == "*" else -1.0
            return _combine(log_rate(a, params), log_rate(b, params), sign)
        case ir.Binary(op="^", left=a, right=b):
            k = constant_value(b)
            if k is None:
                raise NotLinear("raised to a number, not to an expression", b.span)
            coefs, const = log_rate(a, params)
            return {n: k * c for n, c in coefs.items()}, k * const
        case ir.Unary(op="-"):
            raise NotLinear("positive; it cannot be negated", expr.span)
        case ir.Binary(op=op) if op in "+-":
            raise NotLinear(
                "a product, not a sum: write parallel paths as separate states", expr.span
            )
    raise NotLinear("a product of parameters, numbers and exp(...)", expr.span)
