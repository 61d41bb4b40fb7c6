"""Generated module source kept on disk, so that a model compiled once loads again
without deriving or generating it (nor importing sympy for it).

The cache lives in ``$BPM_CACHE_DIR``, else ``$XDG_CACHE_HOME/bpm``, else
``~/.cache/bpm`` (a ``modules/`` folder there); ``BPM_CACHE=0`` turns it off. An entry
is named by the sha256 of everything the generated text depends on: the model text,
the name it was loaded under, the tree budget, bpm's version, the source of the
compiler and grammar themselves (so an edited compiler never reads what another one
wrote) and the versions of sympy, networkx and lark. An entry is written whole (a
temporary file renamed into place) and used only when its first line names its key;
the folder is read only when it belongs to this user and no one else may write to it,
since what it holds is executed. Anything unusual (no home, a read-only disk) means no
cache, never an error.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
import tempfile
from importlib import metadata, resources
from pathlib import Path

#: The environment variable that turns the cache off when ``0``.
SWITCH = "BPM_CACHE"
#: What the first line of an entry says before its key.
HEADER = "# bpm module cache "


def cache_dir() -> Path | None:
    """The folder of cached modules, or None when the cache is off."""
    if os.environ.get(SWITCH, "1").strip().lower() in ("0", "no", "off", "false"):
        return None
    root = os.environ.get("BPM_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg) if xdg else Path.home() / ".cache"
        root = str(base / "bpm")
    return Path(root) / "modules"


def entry_key(text: str, name: str, tree_budget: float) -> str:
    """The sha256 naming the cache entry of a model text loaded under ``name``."""
    digest = hashlib.sha256()
    for part in (_compiler_digest(), name, repr(float(tree_budget)), text):
        digest.update(part.encode("utf-8", errors="surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


def read(key: str) -> str | None:
    """The generated source cached under ``key``, or None."""
    folder = cache_dir()
    if folder is None or not _private(folder):
        return None
    try:
        text = (folder / f"{key}.py").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    first, _, rest = text.partition("\n")
    return rest if first == HEADER + key else None


def write(key: str, source: str) -> None:
    """Keep ``source`` under ``key`` (silently nothing when the folder cannot be made)."""
    folder = cache_dir()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _private(folder):
            return
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(f"{HEADER}{key}\n{source}")
        os.replace(temporary, folder / f"{key}.py")
    except OSError:
        return


def _private(folder: Path) -> bool:
    """True if ``folder`` is a directory of this user that no one else can write to."""
    try:
        status = folder.stat()
    except OSError:
        return False
    if not stat.S_ISDIR(status.st_mode):
        return False
    mine = not hasattr(os, "getuid") or status.st_uid == os.getuid()
    return mine and not status.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


@functools.cache
def _compiler_digest() -> str:
    """The sha256 of bpm's version, the compiler's and grammar's source files and the
    versions of the libraries that shape the generated text."""
    from bpm.compiler import __version__

    digest = hashlib.sha256(__version__.encode())
    for package in ("bpm.compiler", "bpm.grammar"):
        files = resources.files(package)
        for item in sorted(files.iterdir(), key=lambda f: f.name):
            if item.name.endswith((".py", ".lark")) and item.is_file():
                digest.update(item.name.encode() + b"\0" + item.read_bytes() + b"\0")
    for library in ("sympy", "networkx", "lark"):
        try:
            digest.update(f"{library}={metadata.version(library)}\0".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{library}=none\0".encode())
    return digest.hexdigest()
