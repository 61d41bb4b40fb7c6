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
    with pytest.raises(BpmError, match="thermodynamic"):
        graph.draw(load("lac"), tmp_path / "lac.dot")


def test_graph_command_reads_a_file(tmp_path):
    out = graph.graph_command(MODELS / "michaelis_menten.bpm", tmp_path / "mm.dot", trees="free")
    assert "spanning trees into free" in out.read_text()
