"""Sequence letters and the alphabet's codes: which letters a table may use, and how
checked sequences become ``uint8`` codes.

Case: when no two letters of the alphabet differ only in case (``ACGT``, ``xy``), a
letter is read in either case and written as the alphabet has it (``acgt`` is
``ACGT``; ``XY`` is ``xy`` for the alphabet ``xy``). When some do (``Aa``), case is
honoured exactly: ``A`` and ``a`` are different letters. Any Unicode letter works; a
``?`` or ``.`` in the alphabet is a letter like any other, never a wildcard.

>>> letter_codes("ACGT")["g"], letter_codes("Aa")["a"], "A" in letter_codes("xy")
(2, 1, False)
>>> encode(["acgt", "TTGA"], "ACGT").tolist()
[[0, 1, 2, 3], [3, 3, 2, 0]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: The code of a letter outside the alphabet in :func:`encode`'s output.
OUTSIDE = 255


def case_distinct(alphabet: str) -> bool:
    """True if two letters of ``alphabet`` differ only in case (then case is honoured)."""
    folded = [c.casefold() for c in alphabet]
    return len(set(folded)) < len(folded)


def letter_codes(alphabet: str) -> dict[str, int]:
    """Every letter a sequence may use, with its code (index into ``alphabet``)."""
    codes = {letter: i for i, letter in enumerate(alphabet)}
    if case_distinct(alphabet):
        return codes
    out = dict(codes)
    for letter, i in codes.items():
        for variant in (letter.upper(), letter.lower()):
            if len(variant) == 1:
                out.setdefault(variant, i)
    return out


def spelling(alphabet: str) -> dict[int, str]:
    """A :meth:`str.translate` table writing each accepted letter as the alphabet has it."""
    return {ord(c): alphabet[i] for c, i in letter_codes(alphabet).items() if c != alphabet[i]}


def outside(sequence: str, alphabet: str) -> set[str]:
    """The letters of ``sequence`` (already spelled as the alphabet) not in ``alphabet``."""
    return set(sequence).difference(alphabet)


def encode(sequences: Sequence[str] | np.ndarray, alphabet: str = "ACGT") -> np.ndarray:
    """Equal-length sequences as ``uint8[N, L]`` codes (index into ``alphabet``); a
    letter outside the alphabet is :data:`OUTSIDE` (255)."""
    seqs = [str(s) for s in sequences]
    length = len(seqs[0]) if seqs else 0
    if any(len(s) != length for s in seqs):
        raise ValueError("sequences of different lengths cannot be encoded together")
    codes = letter_codes(alphabet)
    joined = "".join(seqs)
    if joined.isascii():
        table = np.full(128, OUTSIDE, dtype=np.uint8)
        for letter, code in codes.items():
            if letter.isascii():
                table[ord(letter)] = code
        raw = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
        return table[raw].reshape(len(seqs), length)
    points = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    keys = np.array(sorted(ord(c) for c in codes), dtype=np.uint32)
    values = np.array([codes[chr(k)] for k in keys], dtype=np.uint8)
    where = np.clip(np.searchsorted(keys, points), 0, len(keys) - 1)
    found = keys[where] == points
    return np.where(found, values[where], OUTSIDE).astype(np.uint8).reshape(len(seqs), length)
