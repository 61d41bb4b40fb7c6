"""The model a saved fit was made from, rebuilt by the compiler: loading a fit runs no
code from the fit directory.

A fit directory's ``model.py`` is the generated module, for people to read; loading the
fit never imports it (a line added to it would run). Instead the module is rebuilt from
the model source (``.bpm`` text) by :mod:`bpm.compiler`, which writes code only from
checked names, and checked against the hash the fit stored:

1. ``model.pt`` records the source (:func:`source_record`: ``{"text", "name",
   "sha256"}``, the sha256 of the checked model's IR): rebuilt from it; a source whose
   hash is not the recorded one, or not the one in ``model.py``'s header, is refused.
2. Fits saved before the source was recorded: rebuilt from the model file passed as
   ``model=`` or, failing that, the one summary.json names (``"model"``), if it exists.
   It must be the model of the fit: the same hash as ``model.py``'s header, or, for
   fits saved by a bpm whose hashes differed, the same states, sites, outputs,
   parameter layout and closed forms as ``model.py`` says (read as text, never run).
3. ``trust=True`` imports ``model.py`` itself, as bpm did before; only for a directory
   you wrote yourself.

Every refusal is one :class:`~bpm.compiler.errors.BpmError` line that says what to do.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from bpm.compiler.codegen_header import model_hash
from bpm.compiler.errors import BpmError
from bpm.compiler.loader import load
from bpm.compiler.pipeline import to_ir

#: The key of the model source record in model.pt.
RECORD_KEY = "model_source"
#: Class attributes of a generated module that say which model it is (docs/module.md).
CONTRACT = (
    "name", "kind", "alphabet", "sequence_length", "state_names", "output_names",
    "energy_names", "param_names", "site_energies", "kT_kcal_per_mol",
)  # fmt: skip
_HEADER_HASH = re.compile(r"^# model sha256: ([0-9a-f]{64})$", re.MULTILINE)


@dataclass(frozen=True)
class Rebuilt:
    """The module class of a saved fit and where it came from.

    ``generated``: the generated module's text; ``model_text``: the ``.bpm`` source
    (empty when trusted without one); ``how``: a sentence for the result's notes, or ""."""

    cls: type
    generated: str
    model_text: str
    name: str
    how: str = ""


def import_source(path: Path) -> type:
    """The ``Model`` class of a generated module file, imported under a name made from
    a hash of its text (the same file imports once).

    This RUNS the file: use it only on a file this process wrote (the several-starts
    workers do), or on a fit directory with ``load_fit(..., trust=True)``."""
    text = path.read_text()
    name = "bpm_fit_" + hashlib.sha256(text.encode()).hexdigest()[:20]
    if name in sys.modules:
        return sys.modules[name].Model
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.Model


def header_hash(generated: str) -> str | None:
    """The ``# model sha256: ...`` of a generated module's header, or None."""
    found = _HEADER_HASH.search(generated[:2000])
    return found.group(1) if found else None


def text_hash(text: str, name: str = "<string>") -> str:
    """The sha256 the generated header carries for model text ``text`` (of its checked IR)."""
    return model_hash(to_ir(text, name))


def source_record(result) -> dict | None:
    """``{"text", "name", "sha256"}`` of the model a FitResult was fitted with, for
    model.pt, or None when its source is unknown.

    The text is ``result.model_text`` when the result carries one (a fit of model
    text, or a fit loaded back), else the file ``result.model_path``, if it still holds
    the model of the fit (its hash is the one in ``result.source``'s header).
    """
    text = getattr(result, "model_text", "") or ""
    name = getattr(result, "model_path", "") or "<string>"
    if not text and name != "<string>" and Path(name).is_file():
        text = Path(name).read_text(encoding="utf-8")
        try:
            if text_hash(text, name) != header_hash(getattr(result, "source", "") or ""):
                return None
        except BpmError:
            return None
    if not text:
        return None
    return {"text": text, "name": name, "sha256": text_hash(text, name)}


def rebuild(directory: Path, saved: dict, model=None, trust: bool = False) -> Rebuilt:
    """The module class of the fit in ``directory`` whose model.pt holds ``saved``
    (see the module docstring for the three ways)."""
    generated_path = directory / "model.py"
    generated = generated_path.read_text(errors="replace") if generated_path.exists() else ""
    if trust:
        if not generated:
            raise BpmError(f"{directory}: model.py is missing, so trust=True has nothing to run")
        record = saved.get(RECORD_KEY)
        text = record.get("text", "") if isinstance(record, dict) else ""
        return Rebuilt(import_source(generated_path), generated, str(text), "", "")
    record = saved.get(RECORD_KEY)
    if record is not None:
        return _from_record(directory, record, generated)
    return _from_model_file(directory, saved, generated, model)


def _from_record(directory: Path, record, generated: str) -> Rebuilt:
    where = f"{directory}/model.pt"
    fields = ("text", "name", "sha256")
    if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in fields):
        raise BpmError(f"{where}: its model source record is damaged (expected text, name, sha256)")
    name = _safe_name(record["name"])
    try:
        found = text_hash(record["text"], name)
    except BpmError as error:
        raise BpmError(
            f"{where}: its recorded model source does not compile: {_first(error)}"
        ) from None
    if found != record["sha256"]:
        raise BpmError(
            f"{where}: its model source does not match its recorded hash (sha256 "
            f"{record['sha256'][:12]} recorded, {found[:12]} compiled): the file was changed "
            "after the fit; refit, or load with trust=True if you changed it yourself"
        )
    stored = header_hash(generated)
    if generated and stored != found:
        raise BpmError(
            f"{directory}/model.py: its header hash ({(stored or 'none')[:12]}) is not the "
            f"model.pt source's ({found[:12]}): the directory was changed after the fit"
        )
    return _compiled(record["text"], name)


def _from_model_file(directory: Path, saved: dict, generated: str, model) -> Rebuilt:
    summary = saved.get("summary") if isinstance(saved.get("summary"), dict) else {}
    named = summary.get("model") if isinstance(summary.get("model"), str) else ""
    advice = (
        "pass the model file it was fitted with (load_fit(DIR, model='FILE.bpm'), "
        "bpm predict DIR --model FILE.bpm), or trust=True (bpm predict --trust) to run "
        "its model.py, only if you wrote the directory yourself"
    )
    if model is None:
        if not (named.endswith(".bpm") and Path(named).is_file()):
            where = f"its model file {named!r} is not here" if named else "it names no model file"
            raise BpmError(
                f"{directory} was saved by a bpm that did not record the model source and "
                f"{where}: {advice}"
            )
        model = named
    text, name = _model_text(model)
    if not generated:
        raise BpmError(f"{directory} is not a fit directory: model.py is missing")
    rebuilt = _compiled(text, name)
    if header_hash(generated) == text_hash(text, name):
        return rebuilt
    difference = structural_difference(generated, rebuilt.generated)
    if difference:
        raise BpmError(
            f"{name} is not the model {directory} was fitted with ({difference}): {advice}"
        )
    how = (
        f"model rebuilt from {name}; the hash in model.py is from an older bpm, so the "
        "model was matched by its states, sites, outputs, parameters and closed forms"
    )
    return Rebuilt(rebuilt.cls, rebuilt.generated, text, name, how)


def _model_text(model) -> tuple[str, str]:
    """``(text, name)`` of a model given as a path or as text."""
    path = Path(model) if isinstance(model, (str, Path)) else None
    if path is not None and "\n" not in str(model) and path.is_file():
        try:
            return path.read_text(encoding="utf-8"), _safe_name(str(model))
        except (OSError, UnicodeDecodeError) as error:
            raise BpmError(f"cannot read {model}: {error}") from None
    if isinstance(model, str) and "\n" in model:
        return model, "<string>"
    raise BpmError(f"model file not found: {model}")


def _compiled(text: str, name: str) -> Rebuilt:
    cls = load(text, name=name)
    module = sys.modules.get(cls.__module__)
    generated = inspect.getsource(module) if module is not None else ""
    return Rebuilt(cls, generated, text, name)


def structural_difference(old: str, new: str) -> str:
    """What differs between two generated modules as models ("" if nothing): their
    contract attributes, parameter storage and closed forms, read with :mod:`ast`
    (neither is run). The first line of the module docstring (the file name) is left out."""
    try:
        a, b = _described(old), _described(new)
    except Exception:  # noqa: BLE001 -- any text that is not a generated module
        return "model.py is not a generated module"
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            return f"{key} differs"
    return ""


def _described(text: str) -> dict:
    tree = ast.parse(text)
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    if not classes:
        raise ValueError("no class")
    values = {}
    for node in classes[0].body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                try:
                    values[target.id] = ast.literal_eval(node.value)
                except Exception:  # noqa: BLE001 -- not a literal: not part of the contract
                    continue
    out = {k: values.get(k) for k in CONTRACT}
    if "parameter_layout" in values:
        layout = values["parameter_layout"]
        out["parameters"] = {
            k: (v["attribute"], v["transform"], v["bound"]) for k, v in layout.items()
        }
    else:
        out["parameters"] = {k: tuple(v) for k, v in (values.get("_storage") or {}).items()}
    doc = (ast.get_docstring(tree) or "").splitlines()[1:]
    out["closed forms"] = doc
    out["states and outputs"] = ast.get_docstring(classes[0])
    return out


def _safe_name(name: str) -> str:
    """A source name fit for a generated header and messages: printable, one line."""
    cleaned = "".join(c if c.isprintable() else "?" for c in str(name))[:200]
    return cleaned or "<string>"


def _first(error: BpmError) -> str:
    return str(error.diagnostics[0].message if error.diagnostics else error).splitlines()[0]
