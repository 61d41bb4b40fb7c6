"""report.html (issue 14): one page with everything a fit directory holds, self-contained.

A fit directory of a thermodynamic and of a kinetic model is written once (a few
optimizer steps), and the page read back: every section is there, every figure of
plots/ is embedded, no address leaves the page, what the directory lacks (Graphviz,
plots/, an old fit's options) is said in words, ``bpm report DIR`` writes the same page
again, and headless Chromium renders it with no console error.
"""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser import chromium, render

from bpm.cli.main import main
from bpm.runtime import fit
from bpm.runtime.plots import mark_stages, pyplot
from bpm.runtime.simulate import simulate

ROOT = Path(__file__).parent.parent
QUICK = dict(steps=20, polish=5, quiet=True, seed=1)
SECTIONS = ["model", "closed-form", "states", "energies", "measurement", "history", "test",
            "parameters", "identifiability", "data", "provenance"]  # fmt: skip

THERMO = """
# A repressor site and an activator with an interaction <script>alert("not run")</script>
model two_sites
sequence x: dna[16]
energy G_A = matrix(x[0:6])
energy G_R = matrix(revcomp(x[8:14]))
energy G_I init -1.0
param  t_max > 0
thermodynamic {
    empty : 0
    act   : G_A
    rep   : G_R
    both  : G_A + G_R + G_I
}
output t = t_max * P(act)
"""
KINETIC = """
model small_scheme
sequence x: dna[12]
energy G_R = matrix(x[2:10])
param k_on > 0
param k_off > 0
param k_open > 0
kinetic {
    unbound -> closed  : k_on * exp(-G_R)
    closed  -> unbound : k_off
    closed  -> open    : k_open
    open    -> unbound : k_off
}
output t = P(open)
"""


class Page(HTMLParser):
    """The parts of a page the tests read: tags, attributes, section ids, images, text."""

    def __init__(self, text: str):
        super().__init__()
        self.tags, self.links, self.images, self.sections, self.words = [], [], [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.links += [(tag, name, attrs[name]) for name in ("href", "src") if name in attrs]
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "section":
            self.sections.append(attrs["id"])

    def handle_data(self, data):
        self.words.append(data)

    @property
    def text(self) -> str:
        return " ".join(self.words)


def fitted(tmp: Path, model: str, name: str, measurement: str = "sortseq") -> Path:
    """A fit directory of ``model`` on data simulated from it, standard errors included."""
    (tmp / f"{name}.bpm").write_text(model)
    reads = 3000 if measurement == "sortseq" else None
    frame, _ = simulate(model, n=900, reads=reads, seed=3, measurement=measurement)
    frame.to_csv(tmp / f"{name}.csv", index=False)
    result = fit(str(tmp / f"{name}.bpm"), str(tmp / f"{name}.csv"), **QUICK)
    result.analyze_uncertainty()
    return result.save(tmp / name)


@pytest.fixture(scope="module")
def thermo(tmp_path_factory):
    return fitted(tmp_path_factory.mktemp("thermo"), THERMO, "thermo")


@pytest.fixture(scope="module")
def kinetic(tmp_path_factory):
    return fitted(tmp_path_factory.mktemp("kinetic"), KINETIC, "kinetic")


def read(directory: Path) -> tuple[str, Page]:
    text = (directory / "report.html").read_text(encoding="utf-8")
    return text, Page(text)


def test_every_section_is_there_and_every_figure_is_embedded(thermo):
    text, page = read(thermo)
    assert page.sections == SECTIONS
    plots = thermo / "plots"
    drawn = sorted(p.relative_to(plots).as_posix() for p in plots.rglob("*.png"))
    assert {"logo_G_A.png", "logo_G_R.png", "history.png", "measurement.png",
            "test_t_by_bin.png", "errors_G_A.png", "errors_scalars.png"} <= set(drawn)  # fmt: skip
    pngs = [src for src in page.images if src.startswith("data:image/png;base64,")]
    assert len(pngs) == len(drawn)  # each once
    for src in pngs:
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    (diagram,) = [src for src in page.images if src not in pngs]  # the state diagram
    assert diagram.startswith("data:image/svg+xml;base64,")
    assert b"G = G_A" in base64.b64decode(diagram.split(",", 1)[1])
    assert "The state diagram is drawn with" in page.text
    for name in drawn:
        assert f"<b>{name}</b>" in text
    summary = json.loads((thermo / "summary.json").read_text())
    for words in ("energy G_R = matrix(revcomp(x[8:14]))", "closed forms:", "P(act)",
                  "G_I", "t_max", "rows_read", summary["data_sha256"], "bpm fit ",
                  "--seed=1 --steps=20 --polish=5 --uncertainty", "adam", "lbfgs"):  # fmt: skip
        assert words in page.text, words


def test_nothing_leaves_the_page_and_model_text_is_escaped(thermo):
    text, page = read(thermo)
    assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
    assert {tag for tag, name, value in page.links if not value.startswith(("#", "data:"))} == set()
    assert "&lt;script&gt;alert(&quot;not run&quot;)&lt;/script&gt;" in text
    assert "<script" not in text.lower()


def test_the_page_shows_units_errors_and_the_data_summary(thermo):
    _, page = read(thermo)
    summary = json.loads((thermo / "summary.json").read_text())
    assert "kT" in page.text and "kcal/mol" in page.text and "± SE" in page.text
    status = summary["standard_error_status"]["status"]
    assert status == "ok" or summary["standard_error_status"]["why"] in page.text
    assert f"{summary['data_validation']['rows_read']:,}" in page.text


def test_a_score_is_drawn_against_its_prediction(tmp_path):
    directory = fitted(tmp_path, THERMO, "scores", measurement="continuous")
    _, page = read(directory)
    assert page.sections == SECTIONS
    assert "<b>test_prediction.png</b>" in (directory / "report.html").read_text()
    assert "measurement kind: continuous" in page.text and "R2" in page.text
    assert "Drawn with the test data" in page.text  # the link is drawn in that figure
    pngs = [src for src in page.images if src.startswith("data:image/png;base64,")]
    assert len(pngs) == len(list((directory / "plots").rglob("*.png")))
    assert len(page.images) == len(pngs) + 1  # and the state diagram


def test_bpm_report_writes_the_same_page_again(thermo, capsys):
    before = (thermo / "report.html").read_bytes()
    (thermo / "report.html").unlink()
    assert main(["report", str(thermo)]) == 0
    assert (thermo / "report.html").read_bytes() == before
    assert "wrote" in capsys.readouterr().err


def test_an_old_directory_gets_a_page_that_says_what_it_lacks(thermo, tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    summary = json.loads((thermo / "summary.json").read_text())
    for key in ("options", "options_given", "bpm_version", "data_sha256"):
        summary.pop(key)
    (old / "summary.json").write_text(json.dumps(summary))
    assert main(["report", str(old), "-o", str(tmp_path / "page.html")]) == 0
    page = Page((tmp_path / "page.html").read_text())
    assert page.sections == SECTIONS and page.images == []
    for words in ("did not record its options", "No model.bpm", "--no-plots"):
        assert words in page.text, words
    assert main(["report", str(tmp_path / "nothing")]) != 0
    assert "is not a directory" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) != 0  # a directory without summary.json
    assert "no summary.json" in capsys.readouterr().err


def test_intervals_optima_and_the_bootstrap_are_shown_where_they_belong(thermo, tmp_path):
    """What --identifiability on, --starts and --bootstrap add to summary.json and plots/."""
    summary = json.loads((thermo / "summary.json").read_text())
    summary["identifiability"] = {
        "level": 0.95, "at_optimum": False, "notes": ["G_I is determined only to 3.6 to ..."],
        "better": {"quantity": "G_I", "value": 4.4, "nll": 1887.0},
        "energy_scale": {"G_A": {"estimate": 1, "low": 0.95, "high": None, "units": "multiplier",
                                 "open": {"high": "still falling at their cap"}}},
        "profile": {"G_I": {"estimate": -1.1, "low": -1.6, "high": -0.7, "units": "kT"}},
    }  # fmt: skip
    summary["optima"] = [{"name": "best: G_I = -1.10 kT", "starts": [1, 2], "delta_train_nll": 0.0,
                          "energies": {"G_I": {"kT": -1.1}}, "matrix_r": {"G_A": 1.0}}]  # fmt: skip
    summary["bootstrap"] = {"params": {"G_I": {"se": 0.25, "low": -1.5, "high": -0.6}},
                            "notes": ["bootstrap: 2 of 2 refits"], "seconds": 10.5}  # fmt: skip
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "plots" / "bootstrap").mkdir(parents=True)
    for name in ("errors_scalars.png", "bootstrap/errors_G_A.png", "extra.png"):
        (tmp_path / "plots" / name).write_bytes((thermo / "plots" / "history.png").read_bytes())
    assert main(["report", str(tmp_path)]) == 0
    text = (tmp_path / "report.html").read_text()
    parts = dict(
        zip(SECTIONS + ["other-figures"], re.split(r"<section id=", text)[1:], strict=True)
    )
    for words in (
        "Profile-likelihood intervals (95%)",
        "still falling at their cap",
        "G_A",
        "a profile refit beat the fit",
        "best: G_I = -1.10 kT",
        "G_I is determined",
    ):
        assert words in parts["identifiability"], words
    assert "bootstrap interval" in parts["parameters"] and "-1.5 to -0.6" in parts["parameters"]
    assert (
        "<b>bootstrap/errors_G_A.png</b>: every matrix entry (−ΔG, as in the logo) above its "
        "bootstrap standard error" in parts["parameters"]
    )
    assert "<b>errors_scalars.png</b>" in parts["parameters"]
    assert "bootstrap wall time (s)" in parts["provenance"]
    assert "<b>extra.png</b>" in parts["other-figures"]  # nothing drawn is left out


def test_a_kinetic_scheme_is_drawn_and_a_missing_graphviz_is_said(kinetic, monkeypatch):
    _, page = read(kinetic)
    scheme = [src for src in page.images if src.startswith("data:image/svg+xml;base64,")]
    assert len(scheme) == 1 and b"<svg" in base64.b64decode(scheme[0].split(",", 1)[1])
    assert "3 states, 4 transitions, drawn with" in page.text
    import bpm.compiler.graph as graph

    monkeypatch.setattr(graph.shutil, "which", lambda name: None)  # no dot anywhere
    assert main(["report", str(kinetic), "-o", str(kinetic.parent / "auto.html")]) == 0
    page = Page((kinetic.parent / "auto.html").read_text())
    assert "drawn with matplotlib (Graphviz's dot is not installed)" in page.text
    monkeypatch.setenv("BPM_GRAPH_ENGINE", "graphviz")  # dot asked for and missing
    assert main(["report", str(kinetic), "-o", str(kinetic.parent / "none.html")]) == 0
    page = Page((kinetic.parent / "none.html").read_text())
    assert "The scheme could not be drawn here (Graphviz's 'dot' is not installed" in page.text
    assert page.sections == SECTIONS


def test_the_report_guide_runs_as_written(tmp_path, monkeypatch, capsys):
    """docs/report.md's Python blocks, in order, from the repository root."""
    monkeypatch.chdir(ROOT)
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "report.md").read_text(), re.S)
    assert len(blocks) == 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block.replace("results/", f"{tmp_path}/"), "report.md", "exec"), namespace)
    assert capsys.readouterr().out.split() == ["True"]  # the refit is the same fit
    assert Page((tmp_path / "lac-quick.html").read_text()).sections == SECTIONS
    assert (tmp_path / "lac-quick" / "report.html").is_file()


def test_the_history_marks_where_each_optimizer_stage_begins():
    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([50, 200, 260], [3.0, 2.6, 2.5])  # the first check after step 0
    mark_stages(ax, [{"stage": "adam", "iterations": 200}, {"stage": "lbfgs", "iterations": 60}])
    assert [line.get_xdata()[0] for line in ax.lines[1:]] == [200]  # one boundary
    names = {text.get_text().strip(): text.xy[0] for text in ax.texts}
    assert names == {"adam": ax.get_xlim()[0], "lbfgs": 200}  # the first inside the axes
    assert 0 < ax.get_xlim()[0] < 50
    plt.close(fig)


BROWSER = pytest.mark.skipif(
    chromium() is None,
    reason="Chromium is not installed (apt-get install chromium; .ci/run installs it)",
)


@BROWSER
@pytest.mark.parametrize("which", ["thermo", "kinetic"])
def test_chromium_renders_the_report_with_no_console_errors(which, request, tmp_path):
    directory = request.getfixturevalue(which)
    shown = render(directory / "report.html", screenshot=tmp_path / "page.png")
    assert shown.problems == []
    assert shown.sections == SECTIONS
    assert shown.images and all(ok for _, ok in shown.images)  # every figure decoded
    assert "How the fit was made" in shown.text
    assert (tmp_path / "page.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@BROWSER
def test_the_browser_check_catches_a_broken_page(thermo, tmp_path):
    text = (thermo / "report.html").read_text()
    bad = ('<img src="data:image/png;base64,AAAA" alt="bad">'
           '<img src="https://example.invalid/x.png" alt="far">'
           "<script>console.error('broken'); missing();</script>")  # fmt: skip
    broken = text.replace("</main>", bad + "</main>")
    (tmp_path / "broken.html").write_text(broken)
    problems = " | ".join(render(tmp_path / "broken.html").problems)
    for words in ("console error: broken", "missing is not defined", "image did not load: bad",
                  "request off the machine: https://example.invalid/x.png"):  # fmt: skip
        assert words in problems, problems
