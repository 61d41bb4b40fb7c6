"""Test-session settings: generated modules are cached in a folder of this session
(``BPM_CACHE_DIR``, inherited by the worker processes some tests start), not in the
user's cache."""

from __future__ import annotations

import os
import shutil
import tempfile

_FOLDER: list[str] = []


def pytest_configure(config) -> None:
    _FOLDER.append(tempfile.mkdtemp(prefix="bpm_test_cache_"))
    os.environ["BPM_CACHE_DIR"] = _FOLDER[0]


def pytest_unconfigure(config) -> None:
    for folder in _FOLDER:
        shutil.rmtree(folder, ignore_errors=True)
