"""Source spans and the errors a person can act on.

Every error that the compiler raises is a :class:`BpmError`. Printed, it reads
like a C compiler's diagnostic::

    models/lac.bpm:12:7: error: unknown state 'rnp' (did you mean 'rnap'?)
        output t = P(rnp)
                     ^~~
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Span:
    """A half-open character range ``[start, end)`` of one source text, with 1-based line/column."""

    start: int
    end: int
    line: int
    column: int
    end_line: int
    end_column: int

    @classmethod
    def at(cls, text: str, start: int, end: int | None = None) -> Span:
        """The span of ``text[start:end]``, computing lines and columns."""
        end = start if end is None else end
        line = text.count("\n", 0, start) + 1
        column = start - (text.rfind("\n", 0, start) + 1) + 1
        end_line = text.count("\n", 0, end) + 1
        end_column = end - (text.rfind("\n", 0, end) + 1) + 1
        return cls(start, end, line, column, end_line, end_column)

    def merge(self, other: Span) -> Span:
        """The smallest span covering both."""
        first, last = (self, other) if self.start <= other.start else (other, self)
        end = max(self, other, key=lambda s: s.end)
        return Span(first.start, end.end, first.line, first.column, end.end_line, end.end_column)


@dataclass(frozen=True)
class Diagnostic:
    """One message about one place in a source file."""

    message: str
    span: Span | None = None
    severity: str = "error"  # "error" or "warning"
    note: str | None = None

    def render(self, source: Source | None) -> str:
        """``file:line:col: severity: message``, then the line with a caret under the span."""
        name = source.name if source is not None else "<input>"
        if self.span is None or source is None:
            head = f"{name}: {self.severity}: {self.message}"
            return head if self.note is None else f"{head}\n    note: {self.note}"
        span = self.span
        head = f"{name}:{span.line}:{span.column}: {self.severity}: {self.message}"
        text = source.line_text(span.line)
        width = span.end - span.start if span.end_line == span.line else len(text) - span.column + 1
        width = max(width, 1)
        pad = "".join("\t" if ch == "\t" else " " for ch in text[: span.column - 1])
        caret = "^" + "~" * (width - 1)
        lines = [head, f"    {text}", f"    {pad}{caret}"]
        if self.note is not None:
            lines.append(f"    note: {self.note}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Source:
    """A source text and the name to print for it (a path, or ``<string>``)."""

    text: str
    name: str = "<string>"

    def line_text(self, line: int) -> str:
        """Line ``line`` (1-based) as the parser counts lines: at ``\\n`` only, so a form
        feed or U+2028 inside a line does not move the caret."""
        lines = [row.removesuffix("\r") for row in self.text.split("\n")]
        return lines[line - 1] if 0 < line <= len(lines) else ""


class BpmError(Exception):
    """Root of every error the compiler and runtime raise on bad models or data."""

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        *,
        source: Source | None = None,
        note: str | None = None,
        diagnostics: Sequence[Diagnostic] | None = None,
    ):
        self.diagnostics: tuple[Diagnostic, ...] = tuple(
            diagnostics if diagnostics else [Diagnostic(message, span, "error", note)]
        )
        self.source = source
        super().__init__(message)

    @property
    def span(self) -> Span | None:
        return self.diagnostics[0].span

    def with_source(self, source: Source) -> BpmError:
        """Attach the source text so the error can print its context (kept if already set)."""
        if self.source is None:
            self.source = source
        return self

    def render(self) -> str:
        return "\n".join(d.render(self.source) for d in self.diagnostics)

    def __str__(self) -> str:
        return self.render()


class BpmSyntaxError(BpmError):
    """The text does not follow the grammar."""


class BpmNameError(BpmError):
    """A name is unknown or declared twice."""


class BpmModelError(BpmError):
    """The model is well formed but makes no sense (bad slice, disconnected scheme, ...)."""


class BpmErrors(BpmError):
    """Several errors of one file, reported together."""

    @classmethod
    def collect(cls, errors: Iterable[BpmError], source: Source | None = None) -> BpmError:
        """One error if there is one, else a combined error listing all of them in source order."""
        errors = list(errors)
        if len(errors) == 1:
            return errors[0].with_source(source) if source else errors[0]
        diagnostics = sorted(
            (d for e in errors for d in e.diagnostics),
            key=lambda d: d.span.start if d.span else -1,
        )
        first = diagnostics[0]
        return cls(first.message, first.span, source=source, diagnostics=diagnostics)


class BpmDataError(BpmError):
    """A dataset cannot be used as it is (bad letters, bad counts, missing columns, ...)."""


@dataclass
class Warnings:
    """Warnings gathered while checking a model (unused declarations, ...)."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, message: str, span: Span | None = None, note: str | None = None) -> None:
        self.items.append(Diagnostic(message, span, "warning", note))


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
