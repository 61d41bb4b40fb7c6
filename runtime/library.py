"""The mutagenized library of a simulated experiment: wild type, variants, codes.

Sequences are handled as ``uint8[N, L]`` letter codes (numpy, vectorized), so a
million variants take a fraction of a second. :func:`mutagenize` draws the variants,
:func:`encode` and :func:`decode` convert between strings and codes, and
:func:`read_wild_type` takes a wild type from a string, a file or a count table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bpm.runtime import contract
from bpm.runtime.data import encode as letter_codes


def read_wild_type(value: str | Path, alphabet: str = "ACGT") -> str:
    """A wild-type sequence from a string, a text file, or a count table's consensus."""
    text = str(value)
    path = Path(text)
    if len(text) < 4096 and path.is_file():
        lower = path.name.lower()
        if any(s in lower for s in (".csv", ".tsv", ".parquet", ".pq")):
            from bpm.runtime.data import read_table

            return consensus(read_table(path)["x"].astype(str).to_numpy(), alphabet)
        lines = [ln.strip() for ln in path.read_text().splitlines()]
        text = "".join(ln for ln in lines if ln and not ln.startswith(">"))
    return text.strip().upper()


def consensus(sequences, alphabet: str = "ACGT") -> str:
    """The most common letter at each position of equal-length sequences."""
    codes = encode(sequences, alphabet)
    best = contract.consensus(codes, 0, codes.shape[1], len(alphabet))
    return "".join(alphabet[k] for k in best)


def encode(sequences, alphabet: str) -> np.ndarray:
    """``uint8[N, L]`` codes (:func:`bpm.runtime.data.encode`); ``ValueError`` for a letter
    outside the alphabet."""
    codes = letter_codes([str(s) for s in sequences], alphabet)
    if (codes == 255).any():
        raise ValueError(f"letters outside '{alphabet}' in the sequences")
    return codes


def decode(codes: np.ndarray, alphabet: str) -> np.ndarray:
    """``uint8[N, L]`` codes back to an array of ``N`` strings (vectorized)."""
    letters = np.frombuffer(alphabet.encode("ascii"), dtype=np.uint8)
    raw = np.ascontiguousarray(letters[codes])
    return raw.view(f"S{codes.shape[1]}").ravel().astype(str)


def mutagenize(
    wild_type: np.ndarray, n: int, rate: float, n_letters: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` variants of ``wild_type`` (codes): each position independently replaced,
    with probability ``rate``, by one of the other letters drawn uniformly."""
    length = len(wild_type)
    mutated = rng.random((n, length), dtype=np.float32) < rate
    shift = rng.integers(1, n_letters, size=(n, length), dtype=np.uint8)
    codes = np.broadcast_to(wild_type.astype(np.uint8), (n, length)).copy()
    codes[mutated] = (codes[mutated] + shift[mutated]) % n_letters
    return codes
