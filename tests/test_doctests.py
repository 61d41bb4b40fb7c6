"""The docstring examples of the compiler's modules run and print what they say."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import bpm.compiler

MODULES = sorted(info.name for info in pkgutil.iter_modules(bpm.compiler.__path__, "bpm.compiler."))


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
