"""Hostile models (issue 16): what check accepts compiles, instantiates and runs.

The refused ones (constants beyond float32, names that collide, no output, too
deep) are goldens in tests/bad/hostile_*; these are the ones that must work.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import torch

from bpm.cli import main
from bpm.compiler import graph, kinetic, pipeline
from bpm.compiler.errors import BpmError, Source, Span
from bpm.compiler.limits import MAX_EXPRESSION_DEPTH

ROOT = Path(__file__).parent.parent
LAC = str(ROOT / "models" / "lac.bpm")
STATES = "energy G\nthermodynamic {\n    a : 0\n    b : G\n}\n"
SITE = "sequence x: dna[4]\nenergy G = matrix(x[0:4])\n"


def run(text: str, name: str = "hostile.bpm") -> torch.Tensor:
    """Compile, import, instantiate and run forward; the output must be finite."""
    source = pipeline.compile(text, "torch", name)
    namespace: dict = {}
    exec(compile(source, name, "exec"), namespace)
    module = namespace["Model"]()
    if module.sequence_length:
        x = module.encode(["ACGT", "TTTT", "GACA"])
        out = module(x)
    else:
        out = module()
    out = out if isinstance(out, torch.Tensor) else torch.stack(list(out.values()))
    assert torch.isfinite(out).all()
    return out.detach()


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("P(a) / log(2)", 0.5 / 0.6931471805599453),
        ("sqrt(2) * P(a)", 0.5 * 2**0.5),
        ("exp(-1) + P(a)", 0.36787944117144233 + 0.5),
        ("2 * log(2) * P(b)", 0.6931471805599453),
    ],
)
def test_constant_functions_are_numbers(output, expected):
    out = run(f"model m\n{STATES}output t = {output}\n")
    assert float(out) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("name", ["super", "len", "isinstance", "getattr", "list", "max", "TREES"])
@pytest.mark.parametrize("kind", ["thermodynamic", "kinetic"])
def test_model_named_like_a_builtin(name, kind):
    if kind == "thermodynamic":
        body = "thermodynamic {\n    a : 0\n    b : G\n}\n"
    else:
        body = "param k > 0\nkinetic {\n    a <-> b : k * exp(-G), 1\n}\n"
    out = run(f"model {name}\n{SITE}{body}output t = P(a)\n")
    assert out.shape == (3,)


def test_nul_and_quotes_in_a_docstring():
    run(f'model m\n"""a NUL \x00, a return \r and a "quote"\n"""\n{STATES}output t = P(a)\n')
    run(f'model m\n"""ends in a quote: "x\\\\"\n"""\n{STATES}output t = P(a)\n')


def test_file_name_with_a_newline():
    run(f"model m\n{STATES}output t = P(a)\n", name="models/evil\nimport os.bpm")


def test_byte_order_mark_is_accepted():
    run(f"\ufeffmodel m\n{STATES}output t = P(a)\n")


@pytest.mark.parametrize(
    "output",
    [
        " + ".join(["P(a)"] * 500),
        " + ".join(["P(a)"] * MAX_EXPRESSION_DEPTH),
        "(" * 500 + "P(a)" + ")" * 500,
        "(" * 5000 + "P(a)" + ")" * 5000,
        "P(a) - (" * 400 + "P(b)" + ")" * 400,
        "P(a)" + "^P(b)" * 40,
    ],
)
def test_deep_expressions_within_the_limits_run(output):
    run(f"model m\n{STATES}output t = {output}\n")


def test_long_state_energies_and_rates_run():
    run("model m\nenergy G\nthermodynamic {\n a : 0\n b : " + " + ".join(["G"] * 500) + "\n}\n"
        "output t = P(b)\n")  # fmt: skip
    rate = " * ".join(["k"] * 500)
    run(f"model m\nparam k > 0\nkinetic {{\n a <-> b : {rate}, 1\n}}\noutput t = P(a)\n")


def test_caret_lines_count_newlines_only():
    text = "a\fb\u2028c\nsecond line\n"
    assert Source(text).line_text(2) == "second line"
    assert Span.at(text, text.index("second")).line == 2


def test_check_refuses_dev_zero_and_goes_on(capsys):
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    assert main(["check", "/dev/zero", LAC]) == 1
    captured = capsys.readouterr()
    assert "/dev/zero: error: cannot read /dev/zero: not a regular file" in captured.err
    assert "lac.bpm: ok" in captured.out


def test_check_goes_on_after_a_bad_file(capsys, tmp_path):
    bad = tmp_path / "deep.bpm"
    bad.write_text("model m\n" + STATES + "output t = " + " + ".join(["P(a)"] * 2000) + "\n")
    assert main(["check", str(bad), LAC]) == 1
    captured = capsys.readouterr()
    assert "nested more than 1000 operators deep" in captured.err
    assert "Traceback" not in captured.err and "lac.bpm: ok" in captured.out


def test_huge_file_is_refused(tmp_path):
    big = tmp_path / "big.bpm"
    with big.open("wb") as f:
        f.truncate(pipeline.MAX_SOURCE_BYTES + 1)
    with pytest.raises(BpmError, match="more than a model file's limit"):
        pipeline.read_source(big)


def complete(n: int) -> str:
    rows = [f"  s{i} <-> s{j} : k, 2" for i in range(n) for j in range(i + 1, n)]
    return "\n".join(["model c", "param k > 0", "kinetic {", *rows, "}", "output t = P(s0)", ""])


def test_graph_trees_refuses_past_its_limit(tmp_path):
    model = pipeline.to_ir(complete(5), "c.bpm")  # 125 trees into each state: drawn
    graph.draw(model, tmp_path / "five.dot", "s0")
    model = pipeline.to_ir(complete(6), "c.bpm")  # 1296
    start = time.perf_counter()
    with pytest.raises(BpmError, match="1296 spanning trees lead into s0: more than the 200"):
        graph.draw(model, tmp_path / "six.svg", "s0")
    assert time.perf_counter() - start < 5
    assert not (tmp_path / "six.svg").exists()


def chain(n: int) -> str:
    rows = [f"  s{i} <-> s{i + 1} : k, 2" for i in range(n - 1)]
    return "\n".join(
        ["model chain", "param k > 0", "kinetic {", *rows, "}", "output t = P(s0)", ""]
    )


def test_tree_counts_of_a_long_chain():
    """One tree into each state of a reversible chain; counted exactly and at once."""
    model = pipeline.to_ir(chain(150), "chain.bpm")
    assert kinetic.count_all_trees(model) == dict.fromkeys(model.states, 1)
    assert kinetic.count_trees(model, "s7") == 1


def test_recursion_limit_is_restored():
    before = sys.getrecursionlimit()
    run(f"model m\n{STATES}output t = " + " + ".join(["P(a)"] * 600) + "\n")
    assert sys.getrecursionlimit() == before
