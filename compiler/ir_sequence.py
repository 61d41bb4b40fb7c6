"""The sequence a model reads: its alphabet, its length and how a person numbers its
letters. Part of the IR (:mod:`bpm.compiler.ir` re-exports every name here).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import Span

# --------------------------------------------------------------------- alphabets


@dataclass(frozen=True)
class Alphabet:
    """The letters a sequence is written in; ``complement[i]`` is the code paired with letter i."""

    name: str  # "dna", "rna", "protein" or "custom"
    letters: str
    complement: tuple[int, ...] | None = None

    def __post_init__(self):
        if len(set(self.letters)) != len(self.letters) or not self.letters:
            raise ValueError(f"alphabet letters must be distinct and non-empty: {self.letters!r}")


DNA = Alphabet("dna", "ACGT", (3, 2, 1, 0))
RNA = Alphabet("rna", "ACGU", (3, 2, 1, 0))
PROTEIN = Alphabet("protein", "ACDEFGHIKLMNPQRSTVWY")
ALPHABETS = {a.name: a for a in (DNA, RNA, PROTEIN)}


@dataclass(frozen=True)
class Numbering:
    """How a person numbers the letters: ``first`` for ``x[0]`` up to ``last``, with no 0
    (..., -2, -1, +1, +2, ...: the letter at the ``reference`` is +1 and the one before
    it -1, as positions relative to a transcription start site are counted).

    Metadata for people (figures, tables); the 0-based index ``x[i]`` stays what the
    model computes with.

    >>> n = Numbering(-3, 6, "5' splice site")
    >>> [n.number(i) for i in range(9)], n.width
    ([-3, -2, -1, 1, 2, 3, 4, 5, 6], 9)
    >>> n.label(3), n.index(1), Numbering(2, 56, None).label(0)
    ('+1', 3, '2')
    """

    first: int
    last: int
    reference: str | None = None

    def __post_init__(self):
        if self.first == 0 or self.last == 0:
            raise ValueError("positions have no 0: ..., -1, +1, ...")
        if self.last < self.first:
            raise ValueError(f"positions count up: {self.first} to {self.last}")
        if self.reference is not None and not self.reference.strip():
            raise ValueError("a reference needs a name")

    @classmethod
    def starting(cls, first: int, length: int, reference: str | None = None) -> Numbering:
        """The numbering of ``length`` letters from ``first`` (0 skipped).

        >>> Numbering.starting(-3, 9).last
        6
        """
        last = first + length - 1
        return cls(first, last + 1 if first < 0 <= last else last, reference)

    @property
    def width(self) -> int:
        """How many letters ``first`` to ``last`` number (0 skipped)."""
        return self.last - self.first + 1 - (1 if self.first < 0 < self.last else 0)

    def number(self, index: int) -> int:
        """The number of the letter ``x[index]``."""
        n = self.first + index
        return n + 1 if self.first < 0 <= n else n

    def index(self, number: int) -> int:
        """The 0-based index of the letter numbered ``number`` (the inverse of :meth:`number`)."""
        if number == 0:
            raise ValueError("positions have no 0")
        return number - self.first - (1 if self.first < 0 < number else 0)

    def label(self, index: int) -> str:
        """``x[index]``'s number as text: signed (``+1``, ``-10``) when relative to a reference."""
        n = self.number(index)
        return f"{n:+d}" if self.reference is not None else str(n)

    def text(self) -> str:
        """The clause as the file writes it: ``positions -75 to -1 relative to TSS``."""
        ref = self.reference
        if ref is not None and not (ref.isidentifier() and ref.isascii()):
            ref = f'"{ref}"'
        where = f" relative to {ref}" if ref is not None else ""
        last = f"{self.last:+d}" if self.first < 0 else str(self.last)
        return f"positions {self.first} to {last}{where}"


@dataclass(frozen=True)
class SequenceDecl:
    """``sequence x: dna[75]``: the one input sequence of a model, optionally numbered
    (``positions -75 to -1 relative to TSS``)."""

    name: str
    alphabet: Alphabet
    length: int
    #: absent from dumps (and so from the model's hash) when None
    numbering: Numbering | None = field(default=None, metadata={"dump": "unless None"})
    span: Span = field(compare=False, kw_only=True)

    def __post_init__(self):
        if self.numbering is not None and self.numbering.width != self.length:
            raise ValueError(
                f"{self.numbering.text()} numbers {self.numbering.width} letters, not {self.length}"
            )
