"""Load a model file as a class in memory, without writing the module to disk.

``load("models/lac.bpm")`` compiles the model, executes the generated source in a
fresh module and returns its class. The module is registered in ``sys.modules``
under a name derived from a hash of the source (so pickling and ``torch.compile``
find it), its text in :mod:`linecache` (so tracebacks show generated lines), and
the result is cached by file content: loading the same text twice gives the same
class. The generated source is also kept on disk (:mod:`.module_cache`), so another
process loading the same model skips the derivation and code generation.
"""

from __future__ import annotations

import hashlib
import linecache
import sys
import types
from pathlib import Path

from . import module_cache
from .errors import Source
from .limits import tree_limit
from .pipeline import read_source

_CACHE: dict[tuple[str, float], type] = {}


def load(
    path_or_text: str | Path,
    *,
    name: str | None = None,
    tree_budget: float | None = None,
) -> type:
    """The generated ``torch.nn.Module`` subclass of a model file (a path) or model text.

    A string containing a newline, or naming no existing file, is taken as model
    text. ``name`` is the source name used in messages and the module header.
    ``tree_budget``: ``None`` is :data:`~bpm.compiler.kinetic.DEFAULT_TREE_BUDGET`,
    ``math.inf`` no limit.
    """
    tree_budget = tree_limit(tree_budget)
    source = _source(path_or_text, name)
    key = (source.text, tree_budget)
    if key in _CACHE:
        return _CACHE[key]
    stored = module_cache.entry_key(source.text, source.name, tree_budget)
    cls = _cached_class(stored, source.text, tree_budget)
    if cls is None:
        text = generate_source(source, tree_budget)
        cls = _exec(text, source.text, tree_budget)
        module_cache.write(stored, text)
    _CACHE[key] = cls
    return cls


def generate_source(source: Source, tree_budget: float) -> str:
    """Parse, check, derive and generate: the module source of a model."""
    from .codegen import generate
    from .pipeline import closed_forms, to_ir

    model_ir = to_ir(source.text, source.name)
    return generate(model_ir, closed_forms(model_ir, tree_budget), source.name)


def _cached_class(stored: str, model_text: str, tree_budget: float) -> type | None:
    """The class of the module source cached under ``stored``, or None (none cached, or
    one that does not run: it is then generated again)."""
    text = module_cache.read(stored)
    if text is None:
        return None
    try:
        return _exec(text, model_text, tree_budget)
    except Exception:  # a damaged entry: generate it afresh
        return None


def module_name(text: str, tree_budget: float | None = None) -> str:
    """The ``sys.modules`` name of a loaded model: ``bpm_generated_<sha256 prefix>``."""
    tree_budget = tree_limit(tree_budget)
    digest = hashlib.sha256(f"{tree_budget}\n{text}".encode()).hexdigest()
    return f"bpm_generated_{digest[:20]}"


def _source(path_or_text: str | Path, name: str | None) -> Source:
    if isinstance(path_or_text, Path) or (
        "\n" not in path_or_text and path_or_text.endswith(".bpm") and Path(path_or_text).exists()
    ):
        source = read_source(path_or_text)
        return Source(source.text, name or source.name)
    return Source(path_or_text, name or "<string>")


def _exec(text: str, model_text: str, tree_budget: float) -> type:
    mod_name = module_name(model_text, tree_budget)
    filename = f"<{mod_name}>"
    module = types.ModuleType(mod_name)
    module.__file__ = filename
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    exec(compile(text, filename, "exec"), module.__dict__)  # noqa: S102
    sys.modules[mod_name] = module
    return module.Model
