"""Outputs that cannot mislead (issue 15): fit directories appear whole or not at all,
simulate writes the format its file name says, and a fit without -o says so."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from bpm.cli import main
from bpm.runtime import report
from bpm.runtime.fit_directory import replacing
from bpm.runtime.table_output import table_format

ROOT = Path(__file__).parent.parent
SIMPLE = str(ROOT / "models" / "simple_repression.bpm")
TINY = ["--quiet", "--steps", "2", "--polish", "0"]


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "sim.csv"
    assert main(["simulate", SIMPLE, "-o", str(out), "--n", "400", "--bins", "4"]) == 0
    return out


@pytest.mark.parametrize("name, sep", [("r.tsv", "\t"), ("r.tsv.gz", "\t"), ("r.csv.gz", ",")])
def test_simulate_writes_the_format_its_suffix_names(tmp_path, capsys, name, sep):
    out = tmp_path / name
    assert main(["simulate", SIMPLE, "-o", str(out), "--n", "200", "--bins", "3"]) == 0
    frame = pd.read_csv(out, sep=sep)
    assert list(frame.columns) == ["x", "ct_0", "ct_1", "ct_2", "set"]
    assert frame[["ct_0", "ct_1", "ct_2"]].to_numpy().sum() == 200
    assert main(["fit", SIMPLE, str(out), *TINY]) == 0  # fit reads what simulate wrote


def test_simulate_writes_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    out = tmp_path / "r.parquet"
    assert main(["simulate", SIMPLE, "-o", str(out), "--n", "200", "--bins", "3"]) == 0
    assert pd.read_parquet(out)[["ct_0", "ct_1", "ct_2"]].to_numpy().sum() == 200


@pytest.mark.parametrize("name", ["r.xlsx", "r.csv.bz2", "r", ".csv", "r.txt"])
def test_simulate_refuses_unknown_suffixes_before_simulating(tmp_path, capsys, name):
    out = tmp_path / name
    assert main(["simulate", SIMPLE, "-o", str(out), "--n", "200"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{out}: error: unknown table format")
    assert list(tmp_path.iterdir()) == []
    assert table_format("a/b.TSV.GZ") == "tsv"


def test_fit_without_output_says_nothing_was_written(table, capsys):
    assert main(["fit", SIMPLE, str(table), *TINY]) == 0
    captured = capsys.readouterr()
    assert captured.out.lstrip().startswith("{")
    assert "results not written" in captured.err and "-o DIR" in captured.err


def test_refit_replaces_the_directory_whole(table, tmp_path, capsys):
    out = tmp_path / "fit"
    (out / "params").mkdir(parents=True)
    (out / "summary.json").write_text("{}")
    stale = out / "params" / "G_R_se_kT.csv"  # as an earlier --uncertainty fit left it
    stale.write_text("stale")
    assert main(["fit", SIMPLE, str(table), *TINY, "--no-plots", "-o", str(out)]) == 0
    assert not stale.exists() and (out / "params" / "G_R_kT.csv").exists()
    assert (out / "model.bpm").read_text() == Path(SIMPLE).read_text()  # the recorded source
    assert (out / "summary.json").read_text() != "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit"]  # no temporary left


def test_an_interrupted_fit_leaves_no_directory(table, tmp_path, capsys, monkeypatch):
    out = tmp_path / "fit"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "write_tables", interrupted)
    assert main(["fit", SIMPLE, str(table), *TINY, "--no-plots", "-o", str(out)]) == 130
    assert list(tmp_path.iterdir()) == []  # neither DIR nor its temporary


def test_a_folder_that_is_not_a_fit_is_never_replaced(table, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["fit", SIMPLE, str(table), *TINY, "--no-plots", "-o", str(tmp_path)]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "is not a bpm fit directory (it holds notes.txt)" in line
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_two_writers_never_interleave_and_the_last_to_finish_wins(tmp_path):
    target = tmp_path / "fit"
    opened = threading.Barrier(2)
    order = []

    def writer(tag: str, delay: threading.Event, done: threading.Event):
        with replacing(target) as folder:
            opened.wait()
            (folder / "summary.json").write_text(tag)
            (folder / "params").mkdir()
            (folder / "params" / f"{tag}.csv").write_text(tag)
            delay.wait(10)
        order.append(tag)
        done.set()

    first_done, second_done, go = threading.Event(), threading.Event(), threading.Event()
    a = threading.Thread(target=writer, args=("a", go, first_done))
    b = threading.Thread(target=writer, args=("b", first_done, second_done))
    a.start(), b.start()
    go.set()
    a.join(10), b.join(10)
    assert order == ["a", "b"]
    assert (target / "summary.json").read_text() == "b"
    assert [p.name for p in (target / "params").iterdir()] == ["b.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit"]


@pytest.mark.parametrize("argv", [["check"], ["compile", "--emit", "ir"]])
def test_compiler_commands_import_no_torch(argv):
    lac = str(ROOT / "models" / "lac.bpm")
    probe = (
        "import sys, io, contextlib\nfrom bpm.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()): main({[*argv[:1], lac, *argv[1:]]!r})\n"
        "print(' '.join(m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_a_streamed_fit_draws_what_a_full_batch_fit_draws(table, tmp_path, capsys, monkeypatch):
    from bpm.runtime import plots

    labels = []
    save = plots.save_figure

    def recording(fig, axes, path):
        labels.extend(ax.get_xlabel() for ax in axes)
        return save(fig, axes, path)

    monkeypatch.setattr(plots, "save_figure", recording)
    full, stream = tmp_path / "full", tmp_path / "stream"
    assert main(["fit", SIMPLE, str(table), *TINY, "-o", str(full)]) == 0
    assert "step (full batch)" in labels
    labels.clear()
    assert main(["fit", SIMPLE, str(table), *TINY, "--stream", "--cache-dir", str(tmp_path),
                 "-o", str(stream)]) == 0  # fmt: skip
    drawn = {p.name for p in (stream / "plots").iterdir()}
    assert {"measurement.png", "history.png"} <= drawn
    assert "step (minibatches)" in labels and "step (full batch)" not in labels
    # the streamed fit has no data for the test box plots; everything else is drawn
    assert drawn == {p.name for p in (full / "plots").iterdir()} - {"test_t_by_bin.png"}
