"""The matplotlib fallback of :mod:`bpm.compiler.graph`, for machines without Graphviz.

Draws with matplotlib's object API (a ``Figure`` and its Agg canvas, never pyplot),
so it works headless and leaves the user's backend alone. States sit on a circle in
declaration order; a transition and its reverse bend apart so both labels read.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

from . import ir
from .graph_labels import EDGE_COLOR, NODE_COLOR, ROOT_COLOR, grid_columns, rate_text, tree_text
from .graph_states import layers, state_edges, state_label
from .trees import trees_into_state as trees_into_one

Position = tuple[float, float]


def layout(states: tuple[str, ...]) -> dict[str, Position]:
    """States on a circle, the first at the left, going clockwise (a line for two)."""
    n = len(states)
    if n == 1:
        return {states[0]: (0.0, 0.0)}
    if n == 2:
        return {states[0]: (-1.0, 0.0), states[1]: (1.0, 0.0)}
    return {
        s: (-math.cos(2 * math.pi * i / n), math.sin(2 * math.pi * i / n))
        for i, s in enumerate(states)
    }


def render(model: ir.Model, path: Path, trees_into_state: str | None = None) -> None:
    """Write an .svg or .png with matplotlib."""
    if model.kind == "thermodynamic":
        figure = states_figure(model)
    elif trees_into_state is None:
        figure = scheme_figure(model)
    else:
        figure = _trees_figure(model, trees_into_state)
    FigureCanvasAgg(figure)
    # an SVG's clip-path ids are random unless salted: the same model, the same bytes
    with rc_context({"svg.hashsalt": model.name}):
        figure.savefig(path, dpi=150, bbox_inches="tight", metadata=_metadata(path))


def _metadata(path: Path) -> dict[str, str | None]:
    """No dates or software versions written into the file."""
    if path.suffix.lower() == ".svg":
        return {"Date": None, "Creator": None}
    return {"Software": None}


def scheme_figure(model: ir.Model) -> Figure:
    """A kinetic scheme as a figure (on an Agg canvas): states on a circle, every
    transition labelled with its rate where the label overlaps no state or other label."""
    longest = max((len(rate_text(t.rate)) for t in model.transitions), default=0)
    side = min(14.0, max(7.0, 0.2 * longest))  # room for long rates beside each other
    figure = Figure(figsize=(side, side * 6 / 7))
    FigureCanvasAgg(figure)  # the states are measured before the labels are placed
    ax = figure.add_subplot()
    _draw_scheme(ax, model)
    ax.set_title(f"{model.name}: {len(model.states)} states, {len(model.transitions)} transitions")
    return figure


def _draw_scheme(ax, model: ir.Model) -> None:
    pos = layout(model.states)
    boxes = [_node(ax, pos[s], s, NODE_COLOR, fontsize=11) for s in model.states]
    _frame(ax, pos, margin=0.55)
    renderer = ax.figure.canvas.get_renderer()
    ax.apply_aspect()
    taken = []
    for text in boxes:
        text.update_bbox_position_size(renderer)
        taken.append(text.get_bbox_patch().get_window_extent(renderer))
    pairs = {(t.source, t.target) for t in model.transitions}
    seen: dict[tuple[str, str], int] = {}
    for t in model.transitions:
        k = seen.get((t.source, t.target), 0)
        seen[(t.source, t.target)] = k + 1
        bend = 0.18 * (1 + k) if (t.target, t.source) in pairs or k else 0.0
        a, b = pos[t.source], pos[t.target]
        _arrow(ax, a, b, bend)
        taken.append(_place_label(ax, _on_arc(a, b, bend), rate_text(t.rate), taken, renderer))


def _on_arc(a: Position, b: Position, bend: float):
    """The point a fraction along matplotlib's ``arc3`` curve from ``a`` to ``b`` (a
    quadratic Bezier whose control point is the chord's midpoint plus ``bend`` times
    ``(dy, -dx)``)."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    c = ((a[0] + b[0]) / 2 + bend * dy, (a[1] + b[1]) / 2 - bend * dx)

    def point(s: float) -> Position:
        return tuple(
            (1 - s) ** 2 * p + 2 * s * (1 - s) * q + s**2 * r
            for p, q, r in zip(a, c, b, strict=True)
        )

    return point


def states_figure(model: ir.Model) -> Figure:
    """A thermodynamic model's state diagram as a figure (on an Agg canvas)."""
    figure = Figure(figsize=(8, 5))
    FigureCanvasAgg(figure)  # the nodes are measured before the arrows are drawn
    ax = figure.add_subplot()
    _draw_states(ax, model)
    ax.set_title(f"{model.name}: {len(model.states)} states (thermodynamic)")
    return figure


def _draw_states(ax, model: ir.Model) -> None:
    """A thermodynamic model's state diagram (:mod:`bpm.compiler.graph_states`), in
    columns by how many steps of binding each state is from the unbound ones."""
    pos = layers(model)
    boxes = {
        s.name: _node(ax, pos[s.name], state_label(s), NODE_COLOR, 10) for s in model.thermo_states
    }
    _frame(ax, pos, margin=0.9)
    half = _half_sizes(ax, boxes)
    renderer = ax.figure.canvas.get_renderer()
    taken = [text.get_bbox_patch().get_window_extent(renderer) for text in boxes.values()]
    for lower, upper, step in state_edges(model):
        a, b = _clipped(pos[lower], pos[upper], half[lower], half[upper])
        _arrow(ax, a, b, 0.0, shrink=2)
        taken.append(_place_label(ax, _on_arc(a, b, 0.0), step, taken, renderer))


#: Where along its arrow a step's label may sit, in the order tried.
LABEL_SPOTS = (0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8)


def _place_label(ax, point, words: str, taken: list, renderer):
    """Put ``words`` on an arrow (``point(s)``: the spot a fraction ``s`` along it) at the
    first of :data:`LABEL_SPOTS` where its box overlaps none of ``taken`` (the boxes
    already drawn; display units), else where it overlaps the fewest; returns its box."""
    best = None
    for spot in LABEL_SPOTS:
        xy = point(spot)
        text = ax.text(*xy, words, ha="center", va="center", fontsize=9, color=EDGE_COLOR,
                       zorder=4, bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                                       "alpha": 0.85})  # fmt: skip
        text.update_bbox_position_size(renderer)
        box = text.get_bbox_patch().get_window_extent(renderer)
        hits = sum(box.overlaps(other) for other in taken)
        if best is None or hits < best[0]:
            if best is not None:
                best[1].remove()
            best = (hits, text, box)
        else:
            text.remove()
        if hits == 0:
            break
    return best[2]


def _half_sizes(ax, boxes: dict) -> dict[str, Position]:
    """Each node's box as half its width and height in data units (drawn once to measure)."""
    renderer = ax.figure.canvas.get_renderer()
    ax.apply_aspect()
    to_data = ax.transData.inverted()
    half = {}
    for name, text in boxes.items():
        text.update_bbox_position_size(renderer)
        (x0, y0), (x1, y1) = to_data.transform(text.get_bbox_patch().get_window_extent(renderer))
        half[name] = (abs(x1 - x0) / 2, abs(y1 - y0) / 2)
    return half


def _clipped(a: Position, b: Position, ha: Position, hb: Position) -> tuple[Position, Position]:
    """The segment from ``a`` to ``b`` less the parts inside the boxes around each end."""
    dx, dy = b[0] - a[0], b[1] - a[1]

    def inside(h: Position) -> float:  # the fraction of the segment within a box
        return min(h[0] / abs(dx) if dx else math.inf, h[1] / abs(dy) if dy else math.inf)

    fa, fb = inside(ha), 1.0 - inside(hb)
    return (a[0] + fa * dx, a[1] + fa * dy), (a[0] + fb * dx, a[1] + fb * dy)


def _trees_figure(model: ir.Model, root: str) -> Figure:
    trees = trees_into_one(model, root)
    columns = grid_columns(len(trees))
    rows = max(1, math.ceil(len(trees) / columns))
    figure = Figure(figsize=(2.8 * columns, 2.6 * rows + 0.6))
    figure.suptitle(f"{model.name}: {len(trees)} spanning trees into {root} (King-Altman)")
    pos = layout(model.states)
    for k, tree in enumerate(trees):
        ax = figure.add_subplot(rows, columns, k + 1)
        for i in tree:
            t = model.transitions[i]
            _arrow(ax, pos[t.source], pos[t.target], 0.0, shrink=16)
        for s in model.states:
            _node(ax, pos[s], s, ROOT_COLOR if s == root else NODE_COLOR, fontsize=7)
        ax.set_title(tree_text(model, tree), fontsize=7, wrap=True)
        _frame(ax, pos, margin=0.45)
    if not trees:
        ax = figure.add_subplot()
        ax.text(0.5, 0.5, f"no spanning tree leads into {root}", ha="center", va="center")
        ax.axis("off")
    return figure


def _node(ax, xy: Position, name: str, color: str, fontsize: float):
    return ax.text(
        *xy,
        name,
        ha="center",
        va="center",
        fontsize=fontsize,
        zorder=3,
        bbox={"boxstyle": "round,pad=0.4", "fc": color, "ec": EDGE_COLOR, "lw": 1},
    )


def _arrow(ax, a: Position, b: Position, bend: float, shrink: float = 24) -> None:
    ax.add_patch(
        FancyArrowPatch(
            a,
            b,
            connectionstyle=f"arc3,rad={bend}",
            arrowstyle="-|>",
            mutation_scale=14,
            color=EDGE_COLOR,
            lw=1.3,
            shrinkA=shrink,
            shrinkB=shrink,
            zorder=2,
        )
    )


def _frame(ax, pos: dict[str, Position], margin: float) -> None:
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - margin, max(xs) + margin)
    ax.set_ylim(min(ys) - margin, max(ys) + margin)
    ax.set_aspect("equal")
    ax.axis("off")
