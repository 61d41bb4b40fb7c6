"""The docstring examples of the command line's runtime helpers run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "bpm.runtime.fit_directory",
    "bpm.runtime.table_output",
    "bpm.runtime.report",
    "bpm.runtime.compare",
    "bpm.runtime.compare_stats",
    "bpm.runtime.positions",
    "bpm.cli.compare_command",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
