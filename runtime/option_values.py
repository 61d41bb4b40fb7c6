"""Values of fit options given as text on a command line: ``--init NAME=NUMBER`` and
``--gates`` (numbers, a file of them, or a simulation's truth JSON).

:func:`bpm.runtime.options.from_arguments` uses them; ``bpm fit`` converts energy units
of ``--init`` first (:mod:`bpm.cli.fit_checks`).
"""

from __future__ import annotations

from bpm.compiler.errors import BpmError


def parse_init(pairs) -> dict[str, float]:
    """``["G_I=-3", ...]`` as ``{"G_I": -3.0}``; a clear error for anything else."""
    out = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise BpmError(f"--init expects NAME=NUMBER, not '{pair}'")
    return out


def parse_gates(text: str) -> tuple[float, ...]:
    """Gates from ``"g1,g2,..."``, from a file with one number a line (``#`` comments), or
    from a simulation's truth JSON (``simulation.bin_edges_log_t``, as ``bpm simulate``
    writes it)."""
    import json
    from pathlib import Path

    path = Path(text)
    if path.is_file() and path.suffix == ".json":
        try:
            return tuple(
                float(g) for g in json.loads(path.read_text())["simulation"]["bin_edges_log_t"]
            )
        except (KeyError, TypeError, ValueError, json.JSONDecodeError):
            raise BpmError(
                f"{path} has no simulation.bin_edges_log_t (a bpm simulate truth file)"
            ) from None
    if path.is_file():
        items = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
        where = f"in {path}"
    else:
        items = [part.strip() for part in text.split(",")]
        where = f"in --gates {text!r}"
    items = [item for item in items if item]
    try:
        return tuple(float(item) for item in items)
    except ValueError:
        raise BpmError(f"gates must be numbers (natural-log brightness); {where}") from None
