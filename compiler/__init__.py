"""bpm.compiler: ``.bpm`` text to closed forms and PyTorch modules."""

from .errors import BpmDataError, BpmError, BpmModelError, BpmNameError, BpmSyntaxError, Span
from .pipeline import compile, derive, to_ast, to_ir

__version__ = "0.1.0"


def load(path, **options):
    """The compiled model class of a ``.bpm`` file (or text), built in memory and cached."""
    from .loader import load as _load

    return _load(path, **options)


__all__ = [
    "BpmDataError",
    "BpmError",
    "BpmModelError",
    "BpmNameError",
    "BpmSyntaxError",
    "Span",
    "compile",
    "derive",
    "load",
    "to_ast",
    "to_ir",
    "__version__",
]
