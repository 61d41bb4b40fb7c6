"""The runtime's one contract with generated modules (docs/module.md).

Everything the runtime knows about a compiled module it reads here: where each
parameter is stored and how (``parameter_layout``), the bound transforms between
natural units and stored values, which output is fitted, which parameters are learned,
where they start, the energies and kT, and the zero-mean gauge of site matrices.
Modules saved before ``parameter_layout`` existed carry the private ``_storage``
instead; :func:`layout` reads both, so old fit directories still load. A module in
eval mode records no gradients (its inference mode); :func:`recording` is how the
runtime differentiates one whatever its mode.
"""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bpm.compiler.errors import BpmError

#: Where a learned scalar energy without an ``init`` in the model file starts, in kT:
#: a mild cooperativity whose sign the data can overturn, keeping the gradients of the
#: site energies it multiplies non-zero (docs/fitting.md, "Where a fit starts").
ENERGY_START = -1.0
#: The spread (kT, standard deviation) of the random entries a site table starts with.
TABLE_START_SD = 0.05
#: kT in kcal/mol at 37 degrees C, for modules that do not say.
KT_37C = 0.616
SITE_PARTS = ("matrix", "offset", "neighbor", "pairwise")


@dataclass(frozen=True)
class Slot:
    """One entry of ``get_params()``: where it lives in the module and what it is.

    ``transform`` is ``identity``, ``lower`` (stored ``log(value - bound)``) or ``upper``
    (stored ``log(bound - value)``); ``kind`` one of ``matrix``, ``offset``,
    ``neighbor``, ``pairwise`` (parts of a site energy), ``energy`` (a scalar energy)
    or ``param``; ``learned`` is False for a fixed value (a buffer); ``init`` the value
    the model file wrote (an ``init`` or a fixed value, natural units) or None.
    """

    name: str
    attribute: str
    transform: str
    bound: float | None
    kind: str
    learned: bool
    init: float | None
    shape: tuple[int, ...]

    @property
    def site(self) -> str | None:
        """The site energy this slot belongs to (``G`` for ``G.offset``), else None."""
        return self.name.split(".")[0] if self.kind in SITE_PARTS else None

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def layout(module: nn.Module) -> dict[str, Slot]:
    """Every ``get_params()`` name of a module instance, in order, as a :class:`Slot`."""
    table = getattr(type(module), "parameter_layout", None)
    if table is None:
        return _legacy_layout(module)
    out = {}
    for name, entry in table.items():
        stored = getattr(module, entry["attribute"])
        out[name] = Slot(
            name=name,
            attribute=entry["attribute"],
            transform=entry["transform"],
            bound=entry["bound"],
            kind=entry["kind"],
            learned=bool(entry["learned"]),
            init=entry["init"],
            shape=tuple(stored.shape),
        )
    return out


def _legacy_layout(module: nn.Module) -> dict[str, Slot]:
    """The layout of a module generated before ``parameter_layout``: kinds inferred from
    ``site_energies`` and ``energy_names``, no record of the file's initial values."""
    storage = getattr(type(module), "_storage", None)
    if storage is None:
        raise BpmError(f"{type(module).__name__} is not a bpm-generated module (no layout)")
    sites = site_energies(module)
    scalars = set(getattr(module, "energy_names", ()) or ()) - set(sites)
    out = {}
    for name, (attribute, transform, bound) in storage.items():
        base, _, part = name.partition(".")
        if base in sites:
            kind = part or "matrix"
        else:
            kind = "energy" if name in scalars else "param"
        stored = getattr(module, attribute)
        out[name] = Slot(
            name,
            attribute,
            transform,
            bound,
            kind,
            isinstance(stored, nn.Parameter),
            None,
            tuple(stored.shape),
        )
    return out


def stored(module: nn.Module, name: str) -> torch.Tensor:
    """The tensor that stores parameter ``name`` (an ``nn.Parameter`` or a buffer)."""
    return getattr(module, layout(module)[name].attribute)


def learned_names(module: nn.Module) -> list[str]:
    """Names of ``get_params()`` that are learned, in layout order (fixed values left out)."""
    return [name for name, slot in layout(module).items() if slot.learned]


# ---------------------------------------------------------------- model classes


def resolve_model(model) -> tuple[type, str, str]:
    """``(class, generated source, path)`` from a .bpm path, .bpm text or a module class."""
    if isinstance(model, type) and issubclass(model, nn.Module):
        return model, _class_source(model), ""
    if isinstance(model, nn.Module):
        raise BpmError("pass the model class or a .bpm file, not an instance")
    from bpm.compiler.loader import load

    path = str(model)
    is_path = "\n" not in path and Path(path).exists()
    if not is_path and "\n" not in path and path.endswith(".bpm"):
        raise BpmError(f"model file not found: {path}")
    cls = load(Path(path) if is_path else path)
    return cls, _class_source(cls), path if is_path else ""


def _class_source(cls: type) -> str:
    try:
        return inspect.getsource(sys.modules[cls.__module__])
    except (OSError, TypeError, KeyError):
        return ""


# ---------------------------------------------------------------- bound transforms


def to_raw(value, transform: str, bound: float | None):
    """Natural units to the stored (unconstrained) value; tensors or numpy arrays."""
    log = torch.log if isinstance(value, torch.Tensor) else np.log
    if transform == "lower":
        return log(value - bound)
    if transform == "upper":
        return log(bound - value)
    return value


def to_natural(raw, transform: str, bound: float | None):
    """The stored value back in natural units; tensors or numpy arrays."""
    exp = torch.exp if isinstance(raw, torch.Tensor) else np.exp
    if transform == "lower":
        return bound + exp(raw)
    if transform == "upper":
        return bound - exp(raw)
    return raw


def natural_derivative(value, transform: str, bound: float | None):
    """d(natural)/d(stored) at a natural ``value``: the chain rule of the bound transform."""
    if transform == "lower":
        return value - bound
    if transform == "upper":
        return value - bound  # natural = bound - exp(raw): derivative -exp(raw) = value - bound
    return np.ones_like(value) if isinstance(value, np.ndarray) else torch.ones_like(value)


# ---------------------------------------------------------------- outputs


@contextmanager
def recording(*modules: nn.Module) -> Iterator[None]:
    """Train mode for the duration, each module's own mode (and its children's) restored
    after: a generated module records gradients in train mode only (docs/module.md), so
    every gradient the runtime takes runs inside this."""
    modes = [(m, m.training) for module in modules for m in module.modules()]
    for module in modules:
        module.train()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def output_names(model) -> tuple[str, ...]:
    """The outputs of a module class or instance, in declaration order."""
    return tuple(getattr(model, "output_names", ("t",)))


def choose_output(model, output: str | None = None) -> str:
    """The output that fitting, simulation and uncertainty use: ``output`` if given,
    else the one named ``t``, else the only one; an error otherwise."""
    names = output_names(model)
    if output is not None:
        if output not in names:
            raise BpmError(f"the model has no output '{output}'; its outputs are {list(names)}")
        return output
    if "t" in names:
        return "t"
    if len(names) == 1:
        return names[0]
    raise BpmError(
        f"the model has several outputs {list(names)} and none is named 't'; "
        "choose one with output=... (bpm fit --model-output NAME)"
    )


def select_output(out, name: str | None) -> torch.Tensor:
    """The output tensor named ``name`` from ``forward``'s result (a tensor or a dict)."""
    if isinstance(out, Mapping):
        if name is None:
            raise BpmError(f"the model has several outputs {sorted(out)}; choose one")
        return out[name]
    return out


def as_codes(module: nn.Module, sequences) -> torch.Tensor:
    """Sequences (strings, or integer codes) as a LongTensor on the module's device."""
    device = next(iter(module.parameters()), torch.zeros(())).device
    if isinstance(sequences, torch.Tensor):
        return sequences.long().to(device)
    if isinstance(sequences, np.ndarray) and sequences.dtype != object:
        return torch.from_numpy(sequences.astype(np.int64)).to(device)
    try:
        return module.encode(list(sequences)).to(device)
    except ValueError as error:
        raise BpmError(f"cannot encode sequences: {error}") from None


# ---------------------------------------------------------------- energies


def site_energies(module) -> dict[str, dict]:
    """``{name: {"kind", "start", "stop", "revcomp"}}`` of the sequence-dependent energies."""
    return dict(getattr(module, "site_energies", {}) or {})


def numbering(module):
    """How a person numbers the module's letters (its ``numbering``, docs/module.md) as a
    :class:`bpm.compiler.ir.Numbering`, or None: a model file without ``positions``, or a
    module made before they existed. Figures and tables then show 0-based indices."""
    from bpm.compiler.ir import Numbering

    found = getattr(module, "numbering", None)
    if not found:
        return None
    try:
        numbers = Numbering(int(found["first"]), int(found["last"]), found.get("reference"))
    except (KeyError, TypeError, ValueError) as error:
        raise BpmError(f"{type(module).__name__}.numbering is not a numbering: {error}") from None
    length = getattr(module, "sequence_length", None)
    if length is not None and numbers.width != length:
        raise BpmError(f"{type(module).__name__}.numbering ({numbers.text()}) does not number "
                       f"its {length} letters")  # fmt: skip
    return numbers


def energy_names(module) -> set[str]:
    """Names of the module's energies (site energies and scalar energies), in kT."""
    return set(getattr(module, "energy_names", ()) or ()) | set(site_energies(module))


def complement(module) -> np.ndarray:
    """The code of each letter's complement (``complement[c]``), from the module's
    ``complement`` buffer, which modules with ``revcomp`` sites carry."""
    found = getattr(module, "complement", None)
    if found is None:
        raise BpmError(f"{type(module).__name__} has revcomp sites but no complement table")
    return np.asarray(found.detach().cpu().numpy() if hasattr(found, "detach") else found, int)


def kT_kcal_per_mol(module) -> float:
    """One thermal unit in kcal/mol at the model's temperature."""
    return float(getattr(module, "kT_kcal_per_mol", KT_37C))


def zero_mean_gauge(params: Mapping[str, object], module) -> dict:
    """Site matrices with zero mean at every position, their offsets absorbing the shifts.

    The energy of every sequence is unchanged. Values come back as floats and numpy
    arrays (natural units).
    """
    out = {k: as_numbers(v) for k, v in params.items()}
    for name in site_energies(module):
        if name not in out:
            continue
        matrix = np.asarray(out[name], dtype=float)
        means = matrix.mean(axis=1, keepdims=True)
        out[name] = matrix - means
        if f"{name}.offset" in out:
            out[f"{name}.offset"] = float(out[f"{name}.offset"]) + float(means.sum())
    return out


def as_numbers(value) -> float | np.ndarray:
    """A tensor, array or number as a float (0-d) or a float64 numpy array."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    value = np.asarray(value, dtype=float)
    return float(value) if value.ndim == 0 else value


def consensus(codes: np.ndarray, start: int, stop: int, letters: int) -> np.ndarray:
    """The most common letter code at each position ``start..stop-1`` of ``codes``."""
    width = stop - start
    window = np.asarray(codes[:, start:stop], dtype=np.int64)
    flat = (window + letters * np.arange(width)).ravel()
    return np.bincount(flat, minlength=width * letters).reshape(width, letters).argmax(1)


# ---------------------------------------------------------------- where a fit starts


def initial_values(module: nn.Module, sd: float = TABLE_START_SD) -> dict[str, torch.Tensor]:
    """Where each learned parameter starts, from the model file and its declared kind.

    A value the file wrote (``init``) is used as written. Otherwise, by kind: site
    tables (``matrix``, ``neighbor``, ``pairwise``) get small random entries (``sd`` kT,
    from torch's global generator), offsets 0 (about half occupancy), scalar energies
    :data:`ENERGY_START` kT, and parameters their compiled default (inside their bounds:
    1 for ``> 0``). Fixed values are left out: the module holds them. Never by name.
    """
    current = module.get_params()
    start = {}
    for name, slot in layout(module).items():
        if not slot.learned:
            continue
        if slot.init is not None:
            start[name] = torch.as_tensor(float(slot.init))
        elif slot.kind in ("matrix", "neighbor", "pairwise"):
            start[name] = sd * torch.randn(slot.shape)
        elif slot.kind == "offset":
            start[name] = torch.zeros(())
        elif slot.kind == "energy":
            start[name] = torch.tensor(ENERGY_START)
        else:
            start[name] = current[name].detach().clone()
    return start
