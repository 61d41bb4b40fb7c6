"""The text tools of code generation: a line writer, literals, docstring text.

The generated module is written by :class:`Writer` (lines and an indentation
context) and :class:`~bpm.compiler.codegen_printer.ModulePrinter` (sympy's
TorchPrinter), never by string templates. The printer lives in its own module
because sympy's ``sympy.printing.pytorch`` imports torch: the parameter layout
(and so ``bpm show``) uses this module and stays free of torch.
"""

from __future__ import annotations

import contextlib
import math
import unicodedata
from collections.abc import Iterator

import sympy

DOC_EXPR_LIMIT = 2000
"""Characters of one closed form shown in a docstring; longer ones are summarized."""


class Writer:
    """Lines of text with an indentation level."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._level = 0

    def line(self, text: str = "") -> None:
        """One line at the current indentation (an empty line carries no spaces)."""
        self._lines.append(("    " * self._level + text) if text else "")

    def lines(self, texts: list[str]) -> None:
        """Several lines at the current indentation."""
        for text in texts:
            self.line(text)

    @contextlib.contextmanager
    def indent(self) -> Iterator[None]:
        """One level deeper for the lines written inside the ``with`` block."""
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
        """Everything written, ending in exactly one newline."""
        return "\n".join(self._lines).rstrip("\n") + "\n"


def _escape_doc(text: str) -> str:
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if text.endswith('"'):  # it would run into the closing quotes
        text = text[:-1] + '\\"'
    return "".join(_escape_control(ch) if ch not in "\n\t" else ch for ch in text)


def _escape_control(ch: str) -> str:
    """A control character (NUL, carriage return, ...) as its escape; others unchanged."""
    return f"\\x{ord(ch):02x}" if unicodedata.category(ch) == "Cc" else ch


def one_line(text: str) -> str:
    r"""``text`` safe inside one line of generated code or a comment: control characters
    (newlines too) as escapes.

    >>> one_line("models/a\nb.bpm")
    'models/a\\x0ab.bpm'
    """
    return "".join(_escape_control(ch) for ch in text)


def float_literal(value: float) -> str:
    """A float literal that reads back exactly (``math.inf`` for infinities).

    >>> float_literal(0.1), float_literal(2), float_literal(float("-inf"))
    ('0.1', '2.0', '-math.inf')
    """
    value = float(value)
    if math.isinf(value):
        return "math.inf" if value > 0 else "-math.inf"
    return repr(value)


def doc_expr(expr: sympy.Expr) -> str:
    """A closed form as docstring text, or a note of its size when it is too long."""
    text = sympy.sstr(expr, order="none")
    if len(text) > DOC_EXPR_LIMIT:
        return f"({len(text)} characters; see `bpm compile --emit sympy`)"
    return text
