"""bpm.runtime: fit compiled models to sort-seq MPRA data, report, save, predict.

The names below load on first use (module ``__getattr__``), so importing the package
(as ``bpm.cli`` does for every command) does not import torch or pandas.
"""

import sys
from importlib import import_module
from types import ModuleType

_WHERE = {
    "Dataset": "data",
    "read_dataset": "data",
    "FitOptions": "options",
    "FitResult": "result",
    "fit": "fit",
    "OrdinalMeasurement": "measurement",
    "AffineMeasurement": "measurement_affine",
    "load_fit": "load",
    "predict": "load",
    "profile": "profile",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(ModuleType):
    """Keeps ``bpm.runtime.fit`` the function: importing the submodule ``fit`` would
    otherwise bind the package attribute ``fit`` to the module (as it did not when
    ``__init__`` imported the function eagerly)."""

    def __setattr__(self, name, value):
        if name in _WHERE and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
