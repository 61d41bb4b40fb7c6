"""Pictures of kinetic schemes: DOT text, Graphviz rendering, and the matplotlib fallback."""

from __future__ import annotations

from pathlib import Path

import pytest
from kinetic_models import kinetic_model

from bpm.compiler import graph, ir, pipeline
from bpm.compiler.errors import BpmError

MODELS = Path(__file__).resolve().parent.parent / "models"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load(name: str):
    return pipeline.to_ir((MODELS / f"{name}.bpm").read_text(), name)


@pytest.fixture
def open_complex():
    return load("open_complex")


def rate_of(text: str) -> str:
    model = pipeline.to_ir(
        "model m\nenergy G\nparam k > 0\nparam c > 0\n"
        f"kinetic {{\n a -> b : {text}\n b -> a : k\n}}\noutput t = P(a)\n",
        "m",
    )
    return graph.rate_text(model.transitions[0].rate)


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("k * exp(-G)", "k·exp(-G)"),
        ("k*c*exp(-2*G)", "k·c·exp(-2·G)"),
        ("k / c", "k/c"),
        ("k / (c * c)", "k/(c·c)"),
        ("k * exp(-(G + G))", "k·exp(-(G + G))"),
        ("k ^ 2", "k^2"),
    ],
)
def test_rate_labels_read_like_the_source(written, shown):
    assert rate_of(written) == shown


def _ir(text: str):
    """An IR output expression over parameters a, b, c."""
    model = pipeline.to_ir(
        f"model m\nparam a\nparam b\nparam c\nkinetic {{ x <-> y : 1, 1 }}\noutput t = {text}\n",
        "m",
    )
    return model.outputs[0].expr


@pytest.mark.parametrize(
    ("written", "shown", "source"),
    [
        ("a * (b * c)", "a·b·c", "a * (b * c)"),
        ("a - (b - c)", "a - (b - c)", "a - (b - c)"),
        ("a / -b", "a/(-b)", "a / -b"),
        ("-(-a)", "-(-a)", "--a"),
        ("a^(b^c)", "a^(b^c)", "a^b^c"),
        ("(-a)^2", "(-a)^2", "(-a)^2"),
        ("+a * 2.5", "a·2.5", "+a * 2.5"),
    ],
)
def test_labels_and_model_text_share_one_printer(written, shown, source):
    """Labels drop brackets that do not change the value; model text keeps the tree."""
    expr = _ir(written)
    assert graph.expr_text(expr) == shown
    assert ir.format_expr(expr) == source


def test_dot_text_is_deterministic_and_labelled(open_complex):
    text = graph.to_dot(open_complex)
    assert text == graph.to_dot(load("open_complex"))
    assert '"unbound" -> "closed" [label=" k_on·exp(-G_R) "];' in text
    assert text.index('"unbound";') < text.index('"closed";') < text.index('"open";')
    assert text.count("->") == len(open_complex.transitions)


def test_dot_of_trees_has_one_cluster_per_tree(open_complex):
    text = graph.to_dot(open_complex, "unbound")
    assert text.count("subgraph cluster_") == 2
    assert 'label="k_off × k_init"' in text and 'label="k_open × k_init"' in text
    assert "2 spanning trees into unbound" in text


def test_dot_file_needs_no_graphviz(open_complex, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "")
    out = graph.draw(open_complex, tmp_path / "scheme.dot")
    assert out.read_text() == graph.to_dot(open_complex)
    graph.draw(open_complex, tmp_path / "trees.dot", "open")
    assert "subgraph cluster_0" in (tmp_path / "trees.dot").read_text()


@pytest.mark.parametrize("trees", [None, "unbound"])
@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_matplotlib_fallback(open_complex, tmp_path, suffix, trees):
    out = graph.draw(open_complex, tmp_path / f"picture{suffix}", trees, engine="matplotlib")
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) if suffix == ".png" else b"<svg" in data


def test_fallback_when_dot_is_missing(open_complex, tmp_path, monkeypatch):
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    assert not graph.has_graphviz()
    out = graph.draw(open_complex, tmp_path / "scheme.png")
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_environment_variable_picks_the_engine(open_complex, tmp_path, monkeypatch):
    monkeypatch.setenv("BPM_GRAPH_ENGINE", "matplotlib")
    monkeypatch.setattr(graph, "_render_graphviz", lambda *a: pytest.fail("used graphviz"))
    graph.draw(open_complex, tmp_path / "scheme.svg")
    monkeypatch.setenv("BPM_GRAPH_ENGINE", "crayons")
    with pytest.raises(BpmError, match="unknown drawing engine"):
        graph.draw(open_complex, tmp_path / "scheme.svg")


def test_matplotlib_svgs_are_the_same_bytes_every_time(open_complex, tmp_path):
    # clip-path ids are salted with the model's name, so report.html is reproducible too
    first = graph.draw(open_complex, tmp_path / "a.svg", engine="matplotlib").read_bytes()
    again = graph.draw(open_complex, tmp_path / "b.svg", engine="matplotlib").read_bytes()
    assert b"clip-path" in first and first == again


def test_fallback_draws_parallel_transitions_and_many_trees(tmp_path):
    model = kinetic_model(
        "k4", [(f"s{u}", f"s{v}", f"k{u}{v}") for u in range(4) for v in range(4) if u != v]
    )
    graph.draw(model, tmp_path / "k4.png", "s0", engine="matplotlib")
    parallel = kinetic_model("mm", [("f", "b", "k1"), ("b", "f", "k2"), ("b", "f", "k3")])
    graph.draw(parallel, tmp_path / "mm.png", engine="matplotlib")
    assert (tmp_path / "mm.png").read_bytes().startswith(PNG_MAGIC)


needs_dot = pytest.mark.skipif(not graph.has_graphviz(), reason="Graphviz 'dot' is not installed")


@needs_dot
@pytest.mark.parametrize("trees", [None, "open"])
def test_graphviz(open_complex, tmp_path, trees):
    svg = graph.draw(open_complex, tmp_path / "scheme.svg", trees, engine="graphviz")
    assert b"<svg" in svg.read_bytes()
    png = graph.draw(open_complex, tmp_path / "scheme.png", trees, engine="graphviz")
    assert png.read_bytes().startswith(PNG_MAGIC)
    if trees is None:
        assert "k_on" in svg.read_text() and "G_R" in svg.read_text()


def test_errors_a_person_can_act_on(open_complex, tmp_path):
    with pytest.raises(BpmError, match="use a .svg, .png or .dot file"):
        graph.draw(open_complex, tmp_path / "scheme.jpg")
    with pytest.raises(BpmError, match="did you mean 'open'"):
        graph.draw(open_complex, tmp_path / "scheme.dot", "opne")
    with pytest.raises(BpmError, match="thermodynamic: it has no spanning trees"):
        graph.draw(load("lac"), tmp_path / "lac.dot", "crp")


def test_graph_command_reads_a_file(tmp_path):
    out = graph.graph_command(MODELS / "michaelis_menten.bpm", tmp_path / "mm.dot", trees="free")
    assert "spanning trees into free" in out.read_text()


# ------------------------------------------------------- thermodynamic state diagrams


def test_a_thermodynamic_model_is_drawn_as_steps_of_binding():
    """lac: the unbound state, CRP or RNAP bound, both; each arrow the energy it adds."""
    from bpm.compiler.graph_states import layers, state_edges

    lac = load("lac")
    assert state_edges(lac) == [
        ("empty", "crp", "+G_C"),
        ("empty", "rnap", "+G_R"),
        ("crp", "crp_rnap", "+G_I + G_R"),
        ("rnap", "crp_rnap", "+G_C + G_I"),
    ]
    pos = layers(lac)
    assert pos["empty"][0] < pos["crp"][0] == pos["rnap"][0] < pos["crp_rnap"][0]
    dot = graph.to_dot(lac)
    assert '"crp" -> "crp_rnap" [label=" +G_I + G_R "];' in dot
    assert '"crp_rnap" [label="crp_rnap\nG = G_C + G_I + G_R"];' in dot  # two lines


def test_only_covering_steps_are_drawn_and_weights_count():
    """No arrow skips a state in between; 2*mu lies above mu, -G never above +G."""
    from bpm.compiler.graph_states import state_edges

    model = pipeline.to_ir(
        "model m\nenergy A\nenergy mu\nthermodynamic {\n e : 0\n one : mu\n two : 2*mu\n"
        " three : 2*mu + A\n neg : -A\n}\noutput t = P(one)\n",
        "m",
    )
    assert state_edges(model) == [
        ("e", "one", "+mu"), ("e", "neg", "-A"), ("one", "two", "+mu"), ("two", "three", "+A"),
    ]  # fmt: skip


@pytest.mark.parametrize("name", ["lac", "activated_repressed", "simple_repression"])
def test_state_diagram_labels_and_boxes_do_not_overlap(name, tmp_path):
    """matplotlib's state diagram: no two boxes (states and step labels) overlap, and every
    arrow ends outside the boxes of its states."""
    from bpm.compiler.graph_mpl import states_figure

    figure = states_figure(load(name))
    renderer = figure.canvas.get_renderer()
    (ax,) = figure.axes
    boxes = []
    for text in ax.texts:
        text.update_bbox_position_size(renderer)
        boxes.append(text.get_bbox_patch().get_window_extent(renderer))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (ax.texts[boxes.index(a)].get_text(), b)
    states = boxes[: len(load(name).states)]
    for arrow in ax.patches:
        ends = arrow.get_path().transformed(arrow.get_transform()).vertices[[0, -1]]
        assert not any(box.contains(*end) for box in states for end in ends)
    path = graph.draw(load(name), tmp_path / "states.png", engine="matplotlib")
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_bpm_graph_draws_a_thermodynamic_model(tmp_path, capsys):
    from bpm.cli import main

    assert main(["graph", str(MODELS / "lac.bpm"), "-o", str(tmp_path / "lac.dot")]) == 0
    assert '"empty" -> "crp"' in (tmp_path / "lac.dot").read_text()
    assert (
        main(["graph", str(MODELS / "lac.bpm"), "-o", str(tmp_path / "x.dot"), "--trees", "crp"])
        == 1
    )
    assert "--trees needs a kinetic scheme" in capsys.readouterr().err
    if graph.has_graphviz():
        svg = graph.draw(load("lac"), tmp_path / "lac.svg", engine="graphviz")
        assert "G = G_C + G_I + G_R" in svg.read_text()


CROWDED = """model crowded
energy G_long_binding_energy = 1
param k_forward_rate_constant > 0
param k_reverse_rate_constant > 0
kinetic {
    a <-> b : k_forward_rate_constant * exp(-G_long_binding_energy), k_reverse_rate_constant
    b <-> c : k_forward_rate_constant, k_reverse_rate_constant * exp(-G_long_binding_energy)
    c <-> d : k_forward_rate_constant, k_reverse_rate_constant
    d <-> a : k_forward_rate_constant, k_reverse_rate_constant
    a <-> c : k_forward_rate_constant, k_reverse_rate_constant
}
output t = P(c)
"""


def label_boxes(figure):
    """Every text box (states and labels) of a one-axes figure, in display units."""
    renderer = figure.canvas.get_renderer()
    (ax,) = figure.axes
    for text in ax.texts:
        text.update_bbox_position_size(renderer)
    return [(t.get_text(), t.get_bbox_patch().get_window_extent(renderer)) for t in ax.texts]


@pytest.mark.parametrize("text", [CROWDED, "open_complex", "michaelis_menten"])
def test_rate_labels_of_a_scheme_do_not_overlap(text):
    """matplotlib's scheme: a label sits where it overlaps no state and no other label,
    also with long rates on reversible pairs and a diagonal."""
    from bpm.compiler.graph_mpl import scheme_figure

    model = pipeline.to_ir(text, "crowded") if "\n" in text else load(text)
    boxes = label_boxes(scheme_figure(model))
    assert len(boxes) == len(model.states) + len(model.transitions)
    for i, (name, a) in enumerate(boxes):
        for other, b in boxes[i + 1 :]:
            assert not a.overlaps(b), (name, other)
