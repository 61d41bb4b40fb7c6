"""Loading a saved fit runs no code from its directory, and a damaged or foreign model.pt
is one clear line (issue 16, "Security")."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from bpm.compiler.errors import BpmError
from bpm.runtime.fit_source import RECORD_KEY, text_hash
from bpm.runtime.load import load_fit, predict

ROOT = Path(__file__).parent.parent
OLD_FIT = ROOT / "tests" / "data" / "fit_v1"
LAC = ROOT / "models" / "lac.bpm"
SIMPLE = ROOT / "models" / "simple_repression.bpm"
EXPECTED = pd.read_csv(OLD_FIT / "expected_predictions.csv")


def copy_fit(tmp_path: Path) -> Path:
    target = tmp_path / "fit"
    shutil.copytree(OLD_FIT, target)
    return target


def planted(fit: Path, marker: Path) -> None:
    """A line in model.py that would leave ``marker`` behind if model.py ran."""
    text = (fit / "model.py").read_text()
    line = f"__import__('pathlib').Path({str(marker)!r}).write_text('ran')\n"
    (fit / "model.py").write_text(text.replace("import torch\n", "import torch\n" + line, 1))


def rewrite(fit: Path, change) -> None:
    saved = torch.load(fit / "model.pt", weights_only=True)
    torch.save(change(saved), fit / "model.pt")


def test_a_planted_line_in_model_py_never_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # summary.json names models/lac.bpm, relative to the repository
    fit, marker = copy_fit(tmp_path), tmp_path / "ran.txt"
    planted(fit, marker)
    got = predict(fit, EXPECTED["sequence"].tolist())
    pd.testing.assert_frame_equal(got, EXPECTED, check_dtype=False, atol=1e-6)
    assert not marker.exists()
    loaded = load_fit(fit)
    assert "__import__" not in loaded.source and "class lac" in loaded.source  # rebuilt text
    assert not marker.exists()
    # trust=True is the escape hatch: it runs model.py, as bpm did before
    load_fit(fit, trust=True)
    assert marker.read_text() == "ran"


def test_recorded_source_is_checked_against_its_hash(tmp_path):
    fit = copy_fit(tmp_path)
    text = LAC.read_text()
    good = {"text": text, "name": "models/lac.bpm", "sha256": text_hash(text)}
    (fit / "model.py").unlink()  # the record is enough: model.py is for people
    rewrite(fit, lambda s: {**s, RECORD_KEY: good})
    got = predict(fit, EXPECTED["sequence"].tolist())
    pd.testing.assert_frame_equal(got, EXPECTED, check_dtype=False, atol=1e-6)
    other = text.replace("interaction G_I", "interaction G_I", 1) + "\n# changed\n"
    assert text_hash(other) == good["sha256"]  # a comment changes no model: same hash
    tampered = text.replace("t_sat", "t_max")
    rewrite(fit, lambda s: {**s, RECORD_KEY: {**good, "text": tampered}})
    with pytest.raises(BpmError, match="does not match its recorded hash") as info:
        load_fit(fit)
    assert len(str(info.value).splitlines()) == 1
    rewrite(fit, lambda s: {**s, RECORD_KEY: {**good, "text": "model ???"}})
    with pytest.raises(BpmError, match="recorded model source does not compile"):
        load_fit(fit)
    rewrite(fit, lambda s: {**s, RECORD_KEY: ["not", "a", "record"]})
    with pytest.raises(BpmError, match="model source record is damaged"):
        load_fit(fit)


def test_record_and_model_py_header_must_agree(tmp_path):
    fit = copy_fit(tmp_path)  # model.py's header carries an older hash of lac
    text = LAC.read_text()
    rewrite(
        fit, lambda s: {**s, RECORD_KEY: {"text": text, "name": "m", "sha256": text_hash(text)}}
    )
    with pytest.raises(BpmError, match="header hash .* is not the model.pt source's"):
        load_fit(fit)


def test_an_old_fit_without_its_model_file_says_what_to_do(tmp_path, monkeypatch):
    fit = copy_fit(tmp_path)
    monkeypatch.chdir(tmp_path)  # models/lac.bpm is not here
    with pytest.raises(BpmError) as info:
        load_fit(fit)
    message = str(info.value)
    assert "did not record the model source" in message and "model='FILE.bpm'" in message
    assert "trust=True" in message and len(message.splitlines()) == 1
    loaded = load_fit(fit, model=LAC)
    got = loaded.predict(EXPECTED["sequence"].tolist())
    pd.testing.assert_frame_equal(got, EXPECTED, check_dtype=False, atol=1e-6)
    assert "older bpm" in loaded.load_note
    with pytest.raises(BpmError, match="is not the model .* was fitted with"):
        load_fit(fit, model=SIMPLE)
    with pytest.raises(BpmError, match="model file not found"):
        load_fit(fit, model=tmp_path / "nowhere.bpm")


class Payload:
    """Unpickling this would call print: torch's weights_only loader must refuse it."""

    def __reduce__(self):
        return (print, ("payload ran",))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: torch.save({"x": Payload()}, p), "objects other than tensors"),
        (lambda p: p.write_bytes(b"\x80\x04garbage" * 10), "not a model.pt bpm can read"),
        (lambda p: p.write_bytes(b""), "not a model.pt bpm can read"),
        (lambda p: torch.save([1, 2, 3], p), "not a dictionary"),
        (lambda p: torch.save({"format": 2}, p), "module_state, measurement_state"),
        (lambda p: torch.save({"format": 99}, p), "newer bpm"),
    ],
)
def test_a_damaged_model_pt_is_one_line(tmp_path, capsys, damage, message):
    fit = copy_fit(tmp_path)
    damage(fit / "model.pt")
    with pytest.raises(BpmError, match=message) as info:
        load_fit(fit)
    assert len(str(info.value).splitlines()) == 1
    assert "weights_only" not in str(info.value) and "payload ran" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: {k: v for k, v in s.items() if k != "summary"}, "summary missing"),
        (lambda s: {**s, "module_state": {}}, "does not hold the parameters"),
        (
            lambda s: {**s, "module_state": {**s["module_state"], "energy_G_I": torch.zeros(3)}},
            "does not hold the parameters",
        ),
        (lambda s: {**s, "measurement_config": {"kind": "psychic"}}, "unknown measurement"),
        (lambda s: {**s, "summary": {"model": "models/lac.bpm"}}, "summary is damaged"),
    ],
)
def test_wrong_keys_or_parameters_are_one_line(tmp_path, monkeypatch, change, message):
    monkeypatch.chdir(ROOT)
    fit = copy_fit(tmp_path)
    rewrite(fit, change)
    with pytest.raises(BpmError, match=message) as info:
        load_fit(fit)
    assert len(str(info.value).splitlines()) == 1


def test_not_a_fit_directory(tmp_path):
    with pytest.raises(BpmError, match="fit directory not found"):
        load_fit(tmp_path / "none")
    with pytest.raises(BpmError, match="model.pt is missing"):
        load_fit(tmp_path)
    summary = json.loads((OLD_FIT / "summary.json").read_text())
    assert summary["model"] == "models/lac.bpm"  # what the fallback reads


def test_predict_takes_a_data_frame_and_names_bad_letters(monkeypatch):
    monkeypatch.chdir(ROOT)
    by_list = predict(OLD_FIT, EXPECTED["sequence"].tolist())
    pd.testing.assert_frame_equal(predict(OLD_FIT, EXPECTED[["sequence"]]), by_list)
    pd.testing.assert_frame_equal(predict(OLD_FIT, EXPECTED["sequence"]), by_list)
    odd = EXPECTED["sequence"][0][:-1] + "é"
    with pytest.raises(BpmError, match=r"sequence 1 has letters \['é'\] outside the alphabet"):
        predict(OLD_FIT, [EXPECTED["sequence"][0], odd])
    lower = predict(OLD_FIT, [s.lower() for s in EXPECTED["sequence"][:3]])
    assert lower["t"].tolist() == pytest.approx(by_list["t"][:3].tolist())


def test_a_new_fit_records_its_source_and_runs_nothing_on_load(tmp_path, monkeypatch):
    from bpm.runtime import fit
    from bpm.runtime.simulate import simulate

    table, _ = simulate(SIMPLE, n=400, bins=3, seed=2)
    # a split column with training and test only: validation is carved from training
    table["set"] = ["test" if k % 5 == 0 else "training" for k in range(len(table))]
    result = fit(str(SIMPLE), table, steps=2, polish=0, quiet=True)
    assert result.data_summary["validation_carved"]["from"] == "training"
    out = result.save(tmp_path / "fit", plots=False)
    saved = torch.load(out / "model.pt", weights_only=True)
    assert saved[RECORD_KEY]["text"] == SIMPLE.read_text()
    assert (out / "model.bpm").read_text() == SIMPLE.read_text()
    marker = tmp_path / "ran.txt"
    planted(out, marker)
    monkeypatch.chdir(tmp_path)  # nowhere near the model file: the record is enough
    seqs = table["x"][:5].tolist()
    pd.testing.assert_frame_equal(load_fit(out).predict(seqs), result.predict(seqs))
    assert not marker.exists()


def test_a_fit_without_test_rows_writes_valid_json(tmp_path):
    from bpm.runtime import fit
    from bpm.runtime.simulate import simulate

    table, _ = simulate(SIMPLE, n=300, bins=3, seed=4)
    table["set"] = ["validation" if k % 4 == 0 else "training" for k in range(len(table))]
    result = fit(str(SIMPLE), table, steps=2, polish=0, quiet=True)
    out = result.save(tmp_path / "fit", plots=False)

    def no_nan(word):
        raise AssertionError(f"summary.json holds {word}")

    info = json.loads((out / "summary.json").read_text(), parse_constant=no_nan)
    assert info["metrics"]["test"] == {"nll": None, "I_var_bits": None, "I_pred_bits": None}
    assert info["data_validation"]["empty_splits"] == ["test"]
    assert "no test rows: the test metrics are null" in info["data_validation"]["notes"]
