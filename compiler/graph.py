"""Pictures of models: a kinetic scheme's state graph and the King-Altman diagrams of one
state, a thermodynamic model's state diagram.

``draw(model, "scheme.svg")`` draws the states with every transition labelled by its
rate (``k_on·exp(-G_R)``); ``draw(model, "trees.png", trees_into_state="open")`` draws
every spanning tree into ``open`` as a grid of small graphs, each titled with its rate
product: the terms whose sum is that state's steady-state weight. A thermodynamic model
is drawn as its states with their free energies, each edge a step of binding labelled
with the energy it adds (:mod:`bpm.compiler.graph_states`).

``.dot`` files are written as text and need nothing else. ``.svg`` and ``.png`` use
Graphviz's ``dot`` when it is installed and matplotlib otherwise; set ``engine`` (or
the environment variable ``BPM_GRAPH_ENGINE``) to ``graphviz`` or ``matplotlib`` to
choose.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Literal

from . import ir, kinetic
from .errors import BpmError
from .graph_labels import (
    EDGE_COLOR,
    NODE_COLOR,
    ROOT_COLOR,
    expr_text,
    grid_columns,
    rate_text,
    tree_text,
)
from .graph_states import state_edges, state_label
from .trees import trees_into_state as trees_into_one

__all__ = [
    "EDGE_COLOR",
    "FORMATS",
    "NODE_COLOR",
    "ROOT_COLOR",
    "Engine",
    "draw",
    "expr_text",
    "graph_command",
    "has_graphviz",
    "rate_text",
    "to_dot",
    "tree_text",
]

Engine = Literal["auto", "graphviz", "matplotlib"]
FORMATS = (".dot", ".svg", ".png")

# ------------------------------------------------------------------ DOT text


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(model: ir.Model, trees_into_state: str | None = None, columns: int | None = None) -> str:
    """Deterministic Graphviz DOT text for the scheme, or for the trees into one state."""
    if trees_into_state is not None:
        return _trees_dot(model, trees_into_state, columns)
    if model.kind == "thermodynamic":
        return _states_dot(model)
    lines = [
        f"digraph {_quote(model.name)} {{",
        '  graph [rankdir=LR, fontname="Helvetica", nodesep=0.6, ranksep=1.0];',
        f'  node [shape=ellipse, style=filled, fillcolor="{NODE_COLOR}", fontname="Helvetica"];',
        f'  edge [color="{EDGE_COLOR}", fontname="Helvetica", fontsize=11];',
    ]
    lines += [f"  {_quote(s)};" for s in model.states]
    for t in model.transitions:
        label = _quote(" " + rate_text(t.rate) + " ")
        lines.append(f"  {_quote(t.source)} -> {_quote(t.target)} [label={label}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _states_dot(model: ir.Model) -> str:
    """A thermodynamic model's state diagram, the least bound state on the left."""
    lines = [
        f"digraph {_quote(model.name)} {{",
        '  graph [rankdir=LR, fontname="Helvetica", nodesep=0.5, ranksep=1.2];',
        f'  node [shape=box, style="rounded,filled", fillcolor="{NODE_COLOR}",'
        ' fontname="Helvetica"];',
        f'  edge [color="{EDGE_COLOR}", fontname="Helvetica", fontsize=11];',
    ]
    lines += [f"  {_quote(s.name)} [label={_quote(state_label(s))}];" for s in model.thermo_states]
    for lower, upper, step in state_edges(model):
        lines.append(f"  {_quote(lower)} -> {_quote(upper)} [label={_quote(' ' + step + ' ')}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _trees_dot(model: ir.Model, root: str, columns: int | None) -> str:
    """One cluster per tree, laid out in rows of ``columns`` with invisible edges."""
    _check_state(model, root)
    trees = trees_into_one(model, root)
    columns = columns or grid_columns(len(trees))
    lines = [
        f"digraph {_quote(model.name + ' trees into ' + root)} {{",
        '  graph [fontname="Helvetica", labelloc=t, fontsize=16, newrank=true,'
        f" label={_quote(f'{len(trees)} spanning trees into {root} (King-Altman)')}];",
        f'  node [shape=ellipse, style=filled, fillcolor="{NODE_COLOR}", fontname="Helvetica",'
        " fontsize=10, width=0.3, height=0.2];",
        f'  edge [color="{EDGE_COLOR}", arrowsize=0.6];',
    ]
    for k, tree in enumerate(trees):
        lines.append(f"  subgraph cluster_{k} {{")
        lines.append(
            f'    graph [label={_quote(tree_text(model, tree))}, fontsize=10, color="#999999"];'
        )
        for j, s in enumerate(model.states):
            fill = f', fillcolor="{ROOT_COLOR}"' if s == root else ""
            lines.append(f"    t{k}_{j} [label={_quote(s)}{fill}];")
        for i in tree:
            t = model.transitions[i]
            a, b = model.states.index(t.source), model.states.index(t.target)
            lines.append(f"    t{k}_{a} -> t{k}_{b};")
        lines.append("  }")
    # Stack the rows: everything in tree k + columns sits below the root of tree k.
    r = model.states.index(root)
    for k in range(len(trees) - columns):
        for j in range(len(model.states)):
            lines.append(f"  t{k}_{r} -> t{k + columns}_{j} [style=invis];")
    # And the roots of one row share a rank, so each row's trees stand on one line.
    for start in range(0, len(trees), columns):
        row = " ".join(f"t{k}_{r};" for k in range(start, min(start + columns, len(trees))))
        lines.append(f"  {{ rank=same; {row} }}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _check_state(model: ir.Model, state: str) -> None:
    if state not in model.states:
        from .errors import did_you_mean

        raise BpmError(f"unknown state '{state}'{did_you_mean(state, model.states)}")


# ------------------------------------------------------------------ drawing

MAX_DRAWN_TREES = 200
"""The most spanning trees into one state that ``draw(..., trees_into_state=...)`` draws."""


def draw(
    model: ir.Model,
    path: str | Path,
    trees_into_state: str | None = None,
    engine: Engine | None = None,
) -> Path:
    """Write the scheme (or the trees into one state) to an ``.svg``, ``.png`` or ``.dot``
    file; a thermodynamic model's state diagram (it has no trees)."""
    if model.kind != "kinetic" and trees_into_state is not None:
        raise BpmError(
            f"{model.name} is thermodynamic: it has no spanning trees to draw",
            note="draw its state diagram without --trees",
        )
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise BpmError(f"cannot draw to '{path}': use a .svg, .png or .dot file")
    if trees_into_state is not None:
        _check_state(model, trees_into_state)
        count = kinetic.count_all_trees(model)[trees_into_state]
        if count > MAX_DRAWN_TREES:
            raise BpmError(
                f"{count} spanning trees lead into {trees_into_state}: more than the "
                f"{MAX_DRAWN_TREES} 'bpm graph --trees' draws",
                note="draw the scheme itself (without --trees), or a smaller scheme",
            )
    if suffix == ".dot":
        path.write_text(to_dot(model, trees_into_state))
        return path
    chosen = engine or os.environ.get("BPM_GRAPH_ENGINE", "auto")
    if chosen not in ("auto", "graphviz", "matplotlib"):
        raise BpmError(f"unknown drawing engine '{chosen}': use graphviz or matplotlib")
    if chosen == "graphviz" or (chosen == "auto" and has_graphviz()):
        _render_graphviz(to_dot(model, trees_into_state), path, suffix[1:])
    else:
        from . import graph_mpl

        graph_mpl.render(model, path, trees_into_state)
    return path


def graph_command(path: str | Path, output: str | Path, trees: str | None = None) -> Path:
    """``bpm graph FILE -o OUTPUT [--trees STATE]``: read a model file and draw it."""
    from . import pipeline

    source = pipeline.read_source(path)
    model = pipeline.to_ir(source.text, source.name)
    return draw(model, output, trees)


def has_graphviz() -> bool:
    """True when Graphviz's ``dot`` program is on the PATH."""
    return shutil.which("dot") is not None


def _render_graphviz(dot_text: str, path: Path, fmt: str) -> None:
    executable = shutil.which("dot")
    if executable is None:
        raise BpmError("Graphviz's 'dot' is not installed; use engine='matplotlib' or a .dot file")
    result = subprocess.run(
        [executable, f"-T{fmt}", "-o", str(path)],
        input=dot_text.encode(),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise BpmError(f"Graphviz failed: {result.stderr.decode(errors='replace').strip()}")
