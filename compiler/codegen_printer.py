"""The sympy printer of code generation: closed forms as torch expressions.

Kept apart from :mod:`.codegen_writer` because ``sympy.printing.pytorch`` imports
torch (about a second): only writing a module's forward pass needs it, not
``bpm show``, ``bpm check`` or the parameter layout.
"""

from __future__ import annotations

import sympy
from sympy.printing.pytorch import TorchPrinter

from .codegen_writer import float_literal


class ModulePrinter(TorchPrinter):
    """sympy's TorchPrinter with each symbol printed as a given piece of code."""

    def __init__(self, names: dict[sympy.Symbol, str]):
        super().__init__({"fully_qualified_modules": True})
        self._names = names

    def _print_Symbol(self, expr: sympy.Symbol) -> str:
        return self._names.get(expr, expr.name)

    def _print(self, expr, **kwargs) -> str:
        """A constant function of numbers (``log(2)``, ``sqrt(2)``, ``exp(-1)``) as one
        float literal: torch's functions take tensors, not Python numbers."""
        if (
            isinstance(expr, sympy.Expr)
            and expr.is_number
            and not isinstance(expr, sympy.Rational | sympy.Float)
        ):
            return float_literal(float(expr))
        return super()._print(expr, **kwargs)

    def _print_Integer(self, expr: sympy.Integer) -> str:
        """Whole numbers beyond 2^53 (``1e38``) as floats: torch refuses ints past int64."""
        value = int(expr)
        return float_literal(value) if abs(value) > 2**53 else str(value)

    def _print_Float(self, expr: sympy.Float) -> str:
        """Every double-precision digit (sympy's default prints 15)."""
        return repr(float(expr))
