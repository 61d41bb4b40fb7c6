"""What ``bpm fit`` checks on its command line before it fits, each refusal one line naming
the option (or file) and what is allowed.

- :func:`check_model`: ``--model-output`` names an output of a ``.bpm`` model, and a model
  with several outputs and no ``t`` gets one (the checker refuses a model with none);
- :func:`resolve_init`: ``--init NAME=VALUE[UNIT]`` in natural units, energies also in
  ``kT``, ``kcal/mol`` or ``kJ/mol`` (converted to kT at the model's temperature),
  each value finite and inside the bounds the model declares;
- :func:`check_device`: ``--device`` is a device this torch can use;
- :func:`named`: an error that names no file yet, attributed to an option or a file;
- :func:`options_from_arguments`: all of the above for the fit flags that ``bpm fit`` and
  ``bpm compare`` share (:func:`bpm.runtime.option_flags.add_arguments`), then the
  :class:`~bpm.runtime.options.FitOptions` they give.

These use the compiler's IR only (no torch); the fit itself checks everything again.
"""

from __future__ import annotations

import math
import re

from bpm.compiler import ir
from bpm.compiler.check_declarations import within_bound
from bpm.compiler.errors import BpmError, Source

#: Energy units accepted by ``--init``, as kcal/mol per unit (kT: converted by the model).
UNITS = {"kcal/mol": 1.0, "kJ/mol": 1 / 4.184}


def named(error: BpmError, name: str) -> BpmError:
    """``error`` printed as ``NAME: error: ...`` (unless it already names its source)."""
    return error.with_source(Source("", name))


#: FitOptions fields whose flag is not ``--`` + the name with dashes.
FLAGS = {"output": "--model-output", "processes": "--distributed", "mode": "--stream"}


def option_flag(message: str) -> str:
    """The flag an options error is about: its first word, when that is a fit option
    (``"steps must be at least 1"`` is about ``--steps``); else ``bpm fit``."""
    from bpm.runtime.options import FitOptions

    word = message.split(" ", 1)[0].strip(":")
    if word in FitOptions.__dataclass_fields__:
        return FLAGS.get(word, "--" + word.replace("_", "-"))
    return "bpm fit"


def check_model_file(path: str) -> None:
    """Refuse a model argument that names no file (instead of parsing the path as text)."""
    from pathlib import Path

    if "\n" not in str(path) and not Path(path).is_file():
        what = "is a directory" if Path(path).is_dir() else "not found"
        raise named(BpmError(f"model file {what}; give a .bpm file"), str(path))


def check_model(path: str, output: str | None) -> ir.Model | None:
    """The checked IR of the ``.bpm`` file ``path`` (None for anything else: the fit
    resolves it), refusing an output choice the fit cannot make."""
    check_model_file(path)
    if not str(path).endswith(".bpm"):
        return None
    from bpm.compiler.pipeline import read_source, to_ir

    source = read_source(path)
    model = to_ir(source.text, source.name)
    names = [o.name for o in model.outputs]  # at least one: the checker refuses none
    if output is not None and output not in names:
        raise named(BpmError(f"the model has no output '{output}'; its outputs are {names}"),
                    "--model-output")  # fmt: skip
    if output is None and "t" not in names and len(names) > 1:
        raise named(
            BpmError(
                f"model '{model.name}' has several outputs {names} and none is named 't'; "
                f"choose one with --model-output {names[0]}"
            ),
            str(path),
        )
    return model


def options_from_arguments(args, models: list[ir.Model | None]):
    """The :class:`~bpm.runtime.options.FitOptions` of the shared fit flags in ``args``
    for ``models`` (the checked IR of each, None where it is not a .bpm file), every
    refusal one line naming its flag: ``--init`` in each model's natural units
    (:func:`resolve_init_all`), ``--device``, ``--counts``, then every option's own check."""
    from argparse import Namespace

    from bpm.runtime.option_flags import from_arguments

    init = resolve_init_all(args.init, models)
    check_device(args.device)
    if args.counts is not None and len([c for c in args.counts.split(",") if c.strip()]) < 2:
        raise named(BpmError(f"needs two or more count columns, dimmest bin first, "
                             f"not {args.counts!r}"), "--counts")  # fmt: skip
    try:
        return from_arguments(Namespace(**{**vars(args), "init": init}))
    except BpmError as error:
        raise named(error, option_flag(error.diagnostics[0].message)) from None


def resolve_init_all(pairs: list[str] | None, models: list[ir.Model | None]) -> list[str] | None:
    """``--init`` values for several models (:func:`resolve_init`), each in the units of
    every model that declares its name (of the first model when none does); a value that
    comes out different in two of them (kcal/mol at two temperatures) is refused."""
    if not pairs:
        return pairs
    out = []
    for pair in pairs:
        name = pair.partition("=")[0].strip()
        having = [m for m in models if m is not None and declares(m, name)] or models[:1]
        values = {resolve_init([pair], model)[0] for model in having}
        if len(values) > 1:
            raise named(BpmError(f"{name} is {sorted(values)} in the models' kT (their "
                                 "temperatures differ): give it in kT"), "--init")  # fmt: skip
        out.append(values.pop())
    return out


def declares(model: ir.Model, name: str) -> bool:
    """True if ``name`` (a ``get_params`` name: ``G``, ``G.offset``, ``k``) is the model's."""
    base = name.partition(".")[0]
    return any(e.name == base for e in model.energies) or any(p.name == name for p in model.params)


def parse_value(text: str) -> tuple[float, str]:
    """``"-3kcal/mol"`` as ``(-3.0, "kcal/mol")``, ``"2"`` as ``(2.0, "")``."""
    text = text.strip()
    number, unit = text, ""
    for known in ("kT", *UNITS):
        if text.endswith(known):
            number, unit = text[: -len(known)], known
            break
    try:
        return float(number), unit
    except ValueError:
        raise BpmError(
            f"expects NAME=NUMBER or NAME=NUMBER UNIT (kT, kcal/mol, kJ/mol), not {text!r}"
        ) from None


def resolve_init(pairs: list[str] | None, model: ir.Model | None) -> list[str] | None:
    """``--init`` values as ``NAME=NUMBER`` in natural units (energies in kT)."""
    if not pairs:
        return pairs
    out = []
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        try:
            if not sep or not name:
                raise BpmError(f"expects NAME=NUMBER, not {pair!r}")
            value, unit = parse_value(text)
            if not math.isfinite(value):
                raise BpmError(f"{name}: the value must be a finite number, not {text.strip()!r}")
            value = in_natural_units(name, value, unit, model)
        except BpmError as error:
            raise named(error, "--init") from None
        out.append(f"{name}={value!r}")
    return out


def in_natural_units(name: str, value: float, unit: str, model: ir.Model | None) -> float:
    """``value`` (in ``unit``) as the model stores ``name``: energies in kT."""
    base, _, part = name.partition(".")
    energy = next((e for e in model.energies if e.name == base), None) if model else None
    if isinstance(energy, ir.SiteEnergy) and part != "offset":
        raise BpmError(
            f"{name} is a site energy (a table); --init sets scalars, e.g. {base}.offset"
        )
    param = next((p for p in model.params if p.name == name), None) if model else None
    if unit and param is not None:
        raise BpmError(f"{name} is a parameter (natural units); only energies take a unit")
    if unit and model is not None and energy is None:
        energies = [e.name for e in model.energies]
        raise BpmError(f"{name} is not an energy of the model (its energies: {energies})")
    if unit in UNITS:
        if model is None:
            raise BpmError(f"{name}: a unit needs the model's temperature; give the value in kT")
        value = value * UNITS[unit] / model.kT
    if param is not None and not within_bound(value, param.lower, param.upper):
        bound = " and ".join(
            text
            for text in (
                f"> {param.lower:g}" if param.lower is not None else "",
                f"< {param.upper:g}" if param.upper is not None else "",
            )
            if text
        )
        raise BpmError(f"{name} must be {bound} (as the model declares it), not {value:g}")
    return value


def check_device(device: str | None) -> None:
    """Refuse a ``--device`` that is not ``cpu``, ``cuda``/``cuda:N`` (with a GPU that
    torch sees) or ``mps`` (where torch has it), in one line."""
    if device is None or device == "cpu":
        return
    if not re.fullmatch(r"cpu|cuda(:\d+)?|mps", device):
        raise named(BpmError(f"unknown device {device!r}; use cpu, cuda or cuda:N"), "--device")
    import torch

    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            seen = f"{count} CUDA device(s)" if count else "no CUDA device"
            raise named(BpmError(f"{device!r} is not available: torch sees {seen}; use cpu"),
                        "--device")  # fmt: skip
    elif not (torch.backends.mps.is_built() and torch.backends.mps.is_available()):
        raise named(BpmError("'mps' is not available in this torch build; use cpu"), "--device")
