"""A fit directory appears complete or not at all: written beside, then renamed into place.

:func:`replacing` hands out a fresh temporary directory next to the target
(``.DIR.<random>.partial``); when the block finishes it becomes ``DIR`` by a rename, so

- a fit interrupted (Ctrl-C, an exception) leaves nothing: the temporary directory is
  removed; one killed outright leaves only the ``.partial`` directory, never a ``DIR``
  with a ``summary.json`` that looks complete;
- a refit replaces the whole earlier directory: no stale ``*_se.csv`` or plots stay;
- two fits into one ``DIR`` at once never interleave: each writes its own temporary
  directory, and the one that finishes last is the one left (each swap is two renames,
  retried until this fit's directory is in place).

An existing ``DIR`` is replaced only when it is empty or holds nothing but what a fit
writes (:data:`FIT_ENTRIES`); anything else is refused, so ``-o .`` cannot remove a folder.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bpm.compiler.errors import BpmError

#: What a fit directory holds (anything else in an existing DIR makes it not one).
FIT_ENTRIES = frozenset(
    {"summary.json", "params", "model.py", "model.bpm", "model.pt", "plots", "report.html"}
)
#: How many times a swap is retried when other fits keep replacing DIR meanwhile.
ATTEMPTS = 50


def check_replaceable(directory: Path) -> None:
    """Refuse to replace ``directory`` unless it is absent, empty or a fit directory."""
    if not directory.exists():
        return
    if not directory.is_dir():
        raise BpmError(f"{directory} exists and is not a directory; choose another -o")
    other = sorted(p.name for p in directory.iterdir() if p.name not in FIT_ENTRIES)
    if other:
        shown = ", ".join(other[:3]) + (", ..." if len(other) > 3 else "")
        raise BpmError(
            f"{directory} exists and is not a bpm fit directory (it holds {shown}); "
            "a fit replaces its directory whole: choose a new or empty -o"
        )


@contextmanager
def replacing(directory: str | Path) -> Iterator[Path]:
    """A temporary directory beside ``directory`` that becomes ``directory`` at the end.

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> with replacing(root / "fit") as tmp:
    ...     _ = (tmp / "summary.json").write_text("{}")
    ...     (root / "fit").exists()
    False
    >>> sorted(p.name for p in (root / "fit").iterdir()), len(list(root.iterdir()))
    (['summary.json'], 1)
    """
    directory = Path(directory)
    check_replaceable(directory)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".partial",
                                    dir=directory.parent))  # fmt: skip
    except OSError as error:
        raise BpmError(f"cannot create {directory}: {error.strerror or error}") from None
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a fit directory is not
        swap_in(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def swap_in(tmp: Path, directory: Path) -> None:
    """Rename ``tmp`` to ``directory``, moving an existing ``directory`` aside first."""
    for _ in range(ATTEMPTS):
        try:
            os.rename(tmp, directory)
            return
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR):
                raise BpmError(f"cannot write {directory}: {error.strerror or error}") from None
        check_replaceable(directory)
        old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".old",
                                    dir=directory.parent))  # fmt: skip
        try:
            os.rename(directory, old / "fit")
        except FileNotFoundError:  # another fit moved it aside first: try again
            pass
        finally:
            shutil.rmtree(old, ignore_errors=True)
    raise BpmError(f"cannot write {directory}: other fits kept replacing it")
