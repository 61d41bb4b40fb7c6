"""Fuzzing models end to end: whatever passes ``bpm check`` compiles, instantiates and runs.

Random models, built from hostile pieces (names like ``super``, ``len``, ``names``,
``G_offset``, ``TREES``; numbers like 1e308, 0 and 1e-320; constant functions; deep
sums; kinetic schemes above and below the tree budget) and random edits of the
models in ``models/``. Each one either fails the check with a ``BpmError`` or
compiles, imports, instantiates and runs ``forward`` on a few sequences. Failures
(anything else raised) are counted: none are allowed.
"""

from __future__ import annotations

import random
import traceback
from pathlib import Path

import torch

from bpm.compiler.errors import BpmError
from bpm.compiler.pipeline import compile as compile_model
from bpm.compiler.pipeline import to_ir

MODELS = [p.read_text() for p in sorted((Path(__file__).parent.parent / "models").glob("*.bpm"))]
NAMES = (
    "G G_offset G_neighbor names table super len self x E P_a math torch k k_raw param_k "
    "energy_G out_t p_k n"
).split()
MODEL_NAMES = (
    "m super len isinstance getattr list max TREES Model self torch math x forward".split()
)
NUMBERS = ["0", "1", "2", "-1", "0.5", "1e308", "1e-320", "1e38", "1e39", "3", "1e-12"]
FUNCTIONS = ["exp", "log", "sqrt"]


def expression(rng: random.Random, leaves: list[str], depth: int) -> str:
    if depth <= 0 or rng.random() < 0.3:
        return rng.choice(leaves + NUMBERS)
    form = rng.randrange(5)
    if form == 0:
        return f"{rng.choice(FUNCTIONS)}({expression(rng, leaves, depth - 1)})"
    if form == 1:
        return f"-{expression(rng, leaves, depth - 1)}"
    if form == 2:
        return f"({expression(rng, leaves, depth - 1)})"
    op = rng.choice(["+", "-", "*", "/", "^"])
    return f"{expression(rng, leaves, depth - 1)} {op} {expression(rng, leaves, depth - 1)}"


def random_model(rng: random.Random) -> str:
    names = rng.sample(NAMES, 4)
    lines = [f"model {rng.choice(MODEL_NAMES)}"]
    if rng.random() < 0.3:
        lines.append(f'"""doc with \x00 and "quotes" {rng.choice(NUMBERS)}"""')
    if rng.random() < 0.2:
        lines.append(f"temperature {rng.choice(NUMBERS)} {rng.choice('CK')}")
    energy, other, param, extra = names
    if rng.random() < 0.5:
        kind = rng.choice(["matrix", "neighbor"])
        lines += ["sequence x: dna[6]", f"energy {energy} = {kind}(x[0:4])"]
    else:
        lines.append(f"energy {energy}" + rng.choice(["", f" = {rng.choice(NUMBERS)} kT"]))
    lines.append(f"energy {other}" + rng.choice(["", f" init {rng.choice(NUMBERS)}"]))
    lines.append(f"param {param} > 0" + rng.choice(["", f" init {rng.choice(NUMBERS)}"]))
    lines.append(f"param {extra} = {rng.choice(NUMBERS)}")
    states = [f"s{i}" for i in range(rng.randint(2, 6))]
    if rng.random() < 0.5:
        lines.append("thermodynamic {")
        lines.append(f"  {states[0]} : 0")
        for s in states[1:]:
            coef = rng.choice(["", "2 * ", "-1 * ", "1e30 * 1e30 * "])
            tail = rng.choice(["", f" + {other}", " + 1"])
            lines.append(f"  {s} : {coef}{rng.choice([energy, other])}{tail}")
        lines.append("}")
    else:
        lines.append("kinetic {")
        for a, b in zip(states, states[1:], strict=False):
            forward = rng.choice(
                [param, f"{param} * exp(-{energy})", f"{param} * {rng.choice(NUMBERS)}"]
            )
            lines.append(f"  {a} <-> {b} : {forward}, {rng.choice(['1', param, 'log(2)'])}")
        if rng.random() < 0.5:
            for a in states:
                for b in states:
                    if a < b and rng.random() < 0.5:
                        lines.append(f"  {a} -> {b} : {param}")
        lines.append("}")
    leaves = [f"P({s})" for s in states] + [param, extra, other]
    if rng.random() < 0.9:
        lines.append(f"output t = {expression(rng, leaves, rng.randint(0, 4))}")
    if rng.random() < 0.2:
        lines.append("output u = " + " + ".join(f"P({rng.choice(states)})" for _ in range(300)))
    return "\n".join(lines) + "\n"


def mutated(rng: random.Random) -> str:
    text = rng.choice(MODELS)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(text))
        j = min(len(text), i + rng.randint(0, 15))
        edit = rng.choice(["", " ", rng.choice(NAMES), rng.choice(NUMBERS), text[i:j]])
        text = text[:i] + edit + text[j:]
    return text


def outcome(text: str) -> str:
    """'refused' (a BpmError at check or compile), 'ran', or the failure's traceback."""
    try:
        to_ir(text, "fuzz.bpm")
        source = compile_model(text, "torch", "fuzz.bpm")
    except BpmError as error:
        error.render()
        return "refused"
    except Exception:
        return traceback.format_exc()
    try:
        namespace: dict = {}
        exec(compile(source, "fuzz.bpm", "exec"), namespace)
        module = namespace["Model"]()
        with torch.no_grad():
            if module.sequence_length:
                shape = (5, module.sequence_length)
                module(torch.randint(0, len(module.alphabet), shape))
            else:
                module()
    except Exception:
        return traceback.format_exc()
    return "ran"


def test_models_that_pass_check_run():
    rng = random.Random(16)
    seen = {"refused": 0, "ran": 0}
    failures = []
    for k in range(240):
        text = random_model(rng) if k % 3 else mutated(rng)
        result = outcome(text)
        if result in seen:
            seen[result] += 1
        else:
            failures.append((text, result))
    assert not failures, f"{len(failures)} failures; first:\n{failures[0][0]}\n{failures[0][1]}"
    # both kinds really exercised (57 ran and 183 refused with the models of 2026-12)
    assert seen["ran"] >= 45 and seen["refused"] >= 30, seen
