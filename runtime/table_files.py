"""Count tables on disk as DataFrames: CSV or TSV (optionally compressed) and Parquet.

Text columns (the sequences, the split labels) are read as text, never as numbers:
``"01"`` sequences keep their leading zeros, and only an empty field is missing (a
sequence ``NA`` or ``nan`` is a sequence). Anything pandas or pyarrow cannot read (a
truncated gzip, a file that is not a table, bad UTF-8) is one
:class:`~bpm.compiler.errors.BpmDataError` line naming the file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from bpm.compiler.errors import BpmDataError

#: Suffixes read as Parquet; any other file is read as delimited text.
PARQUET_SUFFIXES = (".parquet", ".pq")
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zip", ".zst")


def separator(path: Path) -> str | None:
    """None for Parquet, else the separator: tab for .tsv/.tab/.txt (maybe compressed),
    a comma otherwise."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in PARQUET_SUFFIXES:
        return None
    stem = [s for s in suffixes if s not in COMPRESSION_SUFFIXES]
    return "\t" if stem and stem[-1] in (".tsv", ".tab", ".txt") else ","


def _csv_options(sep: str, text_columns: Sequence[str]) -> dict:
    # keep_default_na=False: only an empty field is missing, so a sequence "NA" stays
    # text; counts written NaN/NA still fail to parse as numbers and are reported.
    dtype = {column: str for column in text_columns}
    return {"sep": sep, "dtype": dtype, "keep_default_na": False, "na_values": [""]}


def _problem(path: Path, error: Exception) -> BpmDataError:
    text = " ".join(str(error).split()) or type(error).__name__
    return BpmDataError(f"cannot read {path}: {text[:300]}")


def _exists(path: Path) -> None:
    if not path.exists():
        raise BpmDataError(f"data file not found: {path}")
    if path.is_dir():
        raise BpmDataError(f"data file {path} is a directory, not a table")


def read_table(path: str | Path, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """A CSV/TSV (optionally compressed) or Parquet file as a DataFrame; the columns
    ``text_columns`` that it has are read as strings."""
    path = Path(path)
    _exists(path)
    sep = separator(path)
    try:
        if sep is None:
            return pd.read_parquet(path)
        return pd.read_csv(path, **_csv_options(sep, text_columns))
    except Exception as error:  # noqa: BLE001 -- pandas, pyarrow, gzip and codecs raise many kinds
        raise _problem(path, error) from None


def read_header(path: str | Path) -> list[str]:
    """The column names of the table at ``path`` (read without its rows)."""
    path = Path(path)
    _exists(path)
    sep = separator(path)
    try:
        if sep is None:
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        return [str(c) for c in pd.read_csv(path, sep=sep, nrows=0).columns]
    except Exception as error:  # noqa: BLE001 -- as read_table
        raise _problem(path, error) from None


def read_chunks(
    path: str | Path, chunk_rows: int, text_columns: Sequence[str] = ()
) -> Iterator[pd.DataFrame]:
    """The table of :func:`read_table` in DataFrames of ``chunk_rows`` rows, in file order."""
    path = Path(path)
    _exists(path)
    sep = separator(path)
    try:
        if sep is None:
            import pyarrow.parquet as pq

            batches = (b.to_pandas() for b in pq.ParquetFile(path).iter_batches(chunk_rows))
        else:
            batches = pd.read_csv(path, chunksize=chunk_rows, **_csv_options(sep, text_columns))
        while True:
            try:
                chunk = next(batches)
            except StopIteration:
                return
            yield chunk
    except BpmDataError:
        raise
    except GeneratorExit:
        raise
    except Exception as error:  # noqa: BLE001 -- as read_table
        raise _problem(path, error) from None
