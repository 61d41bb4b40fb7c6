"""bpm fit's refusals: one line, naming the option or file and what is allowed (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpm.cli import main
from bpm.cli.fit_checks import parse_value, resolve_init
from bpm.compiler.pipeline import read_source, to_ir

ROOT = Path(__file__).parent.parent
LAC = str(ROOT / "models" / "lac.bpm")
SIMPLE = ROOT / "models" / "simple_repression.bpm"


def refusal(capsys, *argv) -> str:
    """The one line of stderr that ``bpm ARGV`` exits 1 with."""
    assert main(list(argv)) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--steps", "0"], "--steps: error: steps must be at least 1, not 0"),
        (["--epochs", "0"], "--epochs: error: epochs must be at least 1, not 0"),
        (["--stream", "--epochs", "0"], "--epochs: error: epochs must be at least 1"),
        (["--device", "gpu"], "--device: error: unknown device 'gpu'; use cpu, cuda or cuda:N"),
        (["--device", "mps"], "--device: error: 'mps' is not available"),
        (["--device", "cuda:99"], "--device: error: 'cuda:99' is not available: torch sees"),
        (["--init", "t_sat=-1"], "--init: error: t_sat must be > 0 (as the model declares it)"),
        (["--init", "t_sat=2kT"], "--init: error: t_sat is a parameter (natural units)"),
        (["--init", "G_I=3 furlongs"], "--init: error: expects NAME=NUMBER or NAME=NUMBER UNIT"),
        (["--init", "G_I=nan"], "--init: error: G_I: the value must be a finite number"),
        (["--init", "G_R=1"], "--init: error: G_R is a site energy (a table)"),
        (["--lr", "-1"], "--lr: error: lr must be a positive learning rate, not -1.0"),
        (["--polish", "-2"], "--polish: error: polish must be 0 (none) or more"),
        (["--gates", "1,2"], "--gates: error: gates fix the cutpoints of the affine link"),
        (["--model-output", "u"], "--model-output: error: the model has no output 'u'"),
    ],
)
def test_option_errors_name_the_option(capsys, flags, expected):
    line = refusal(capsys, "fit", LAC, "no-such-data.csv", *flags)
    assert line.startswith(expected), line


def test_init_takes_the_languages_energy_units():
    model = to_ir(read_source(LAC).text, LAC)
    kT = model.kT  # kcal/mol per kT at the model's temperature
    got = resolve_init(["G_I=-3kcal/mol", "G_C.offset=4.184 kJ/mol", "t_sat=2", "G_R.offset=1kT"],
                       model)  # fmt: skip
    values = {k: float(v) for k, v in (pair.split("=") for pair in got)}
    assert values["G_I"] == pytest.approx(-3 / kT)
    assert values["G_C.offset"] == pytest.approx(1 / kT)
    assert values["t_sat"] == 2 and values["G_R.offset"] == 1
    assert parse_value(" -1.5e-1 kcal/mol ") == (-0.15, "kcal/mol")


def test_init_in_kcal_per_mol_reaches_the_fit_options(monkeypatch):
    from bpm.cli import fit_commands

    seen = {}
    monkeypatch.setattr(fit_commands, "run_fit", lambda *a, **k: seen.update(options=a[3]) or 0)
    assert main(["fit", LAC, "data.csv", "--init", "G_I=-3kcal/mol", "--fix", "G_I"]) == 0
    kT = to_ir(read_source(LAC).text, LAC).kT
    assert seen["options"].init == {"G_I": pytest.approx(-3 / kT)}
    assert seen["options"].fix == ("G_I",)


def test_data_errors_name_the_data_file(capsys, tmp_path):
    missing = tmp_path / "nope.csv"
    line = refusal(capsys, "fit", LAC, str(missing))
    assert line == f"{missing}: error: data file not found: {missing}"
    bad = tmp_path / "bad.csv"
    bad.write_text("x,ct_0,ct_1\nAC,1,-1\n")
    err = (main(["fit", str(SIMPLE), str(bad)]), capsys.readouterr().err)
    assert err[0] == 1 and "<input>" not in err[1]
    assert all(line.startswith(f"{bad}: error: ") for line in err[1].strip().splitlines())


def test_outputs_the_fit_cannot_choose(capsys, tmp_path):
    text = SIMPLE.read_text()
    two = tmp_path / "two.bpm"
    two.write_text(text.replace("output t = r_max * P(rnap)",
                                "output a = r_max * P(rnap)\noutput b = P(repressor)"))  # fmt: skip
    line = refusal(capsys, "fit", str(two), "data.csv")
    assert "choose one with --model-output a" in line and "--output" not in line.replace(
        "--model-output", ""
    )
    none = tmp_path / "none.bpm"
    none.write_text(text.replace("output t = r_max * P(rnap)", ""))
    assert main(["fit", str(none), "data.csv"]) == 1  # a check error (bpm check says so too)
    err = capsys.readouterr().err
    assert err.startswith(f"{none}:2:7: error: model simple_repression has no output")
    assert main(["check", str(none)]) == 1


def test_errors_without_a_file_name_the_command(capsys, tmp_path):
    line = refusal(capsys, "predict", str(tmp_path / "no-fit"), "ACGT")
    assert not line.startswith("<input>") and line.split(":")[0] in ("bpm predict", str(tmp_path))


def tiny_data(folder: Path) -> Path:
    """A small simulated table for simple_repression (400 cells, 4 bins)."""
    out = folder / "sim.csv"
    assert main(["simulate", str(SIMPLE), "-o", str(out), "--n", "400", "--bins", "4"]) == 0
    return out


def test_the_python_api_refuses_an_unknown_device_too():
    from bpm.compiler.errors import BpmError
    from bpm.runtime.options import FitOptions

    with pytest.raises(BpmError, match="device must be cpu, cuda, cuda:N or mps, not 'gpu'"):
        FitOptions(device="gpu")
    assert FitOptions(device="cuda:1").device == "cuda:1"  # refused only when it is used


def test_no_carve_validation_reaches_the_data_options(monkeypatch):
    from bpm.cli import fit_commands

    seen = {}
    monkeypatch.setattr(fit_commands, "run_fit", lambda *a, **k: seen.update(options=a[3]) or 0)
    assert main(["fit", LAC, "data.csv", "--no-carve-validation", "--split-column", "s"]) == 0
    assert seen["options"].data_options == {"carve_validation": False, "split_column": "s"}
    assert main(["fit", LAC, "data.csv"]) == 0
    assert "carve_validation" not in seen["options"].data_options


def test_predict_passes_model_and_trust_to_the_loader(monkeypatch, tmp_path, capsys):
    import pandas as pd

    from bpm.runtime import load

    calls = []

    def fake(fit_dir, sequences, **kwargs):
        calls.append(kwargs)
        return pd.DataFrame({"sequence": sequences})

    monkeypatch.setattr(load, "predict", fake)
    assert main(["predict", str(tmp_path), "ACGT"]) == 0
    assert main(["predict", str(tmp_path), "ACGT", "--model", LAC, "--trust"]) == 0
    assert calls == [{}, {"model": LAC, "trust": True}]
