"""Writing a count table in the format its file name says.

``.csv`` and ``.tsv`` (each optionally ``.gz``) and ``.parquet`` / ``.pq`` (with
pyarrow installed): the same formats ``bpm fit`` reads. Any other suffix is refused
before anything is computed, so ``-o r.xlsx`` cannot write a CSV named ``.xlsx``.
"""

from __future__ import annotations

from pathlib import Path

from bpm.compiler.errors import BpmError, Source

#: Suffixes written, and the format each names.
FORMATS = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": "tsv",
    ".tsv.gz": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def table_format(path: str | Path) -> str:
    """``csv``, ``tsv`` or ``parquet`` for ``path``'s suffix; a one-line error otherwise.

    >>> table_format("sim/r.tsv.gz"), table_format("r.CSV")
    ('tsv', 'csv')
    """
    name = Path(path).name.lower()
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            kind = FORMATS[suffix]
            if kind == "parquet":
                try:
                    import pyarrow  # noqa: F401
                except ImportError:
                    message = "writing Parquet needs pyarrow (pip install pyarrow), or name a .csv"
                    raise _named(message, path) from None
            return kind
    raise _named(
        f"unknown table format; name the file {', '.join(FORMATS)} (the suffix picks the format)",
        path,
    )


def write_table(frame, path: str | Path) -> Path:
    """Write ``frame`` (a DataFrame) to ``path`` in :func:`table_format`'s format."""
    path = Path(path)
    kind = table_format(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False, sep="\t" if kind == "tsv" else ",")
    except OSError as error:
        raise _named(f"cannot write: {error.strerror or error}", path) from None
    return path


def _named(message: str, path) -> BpmError:
    return BpmError(message).with_source(Source("", str(path)))
