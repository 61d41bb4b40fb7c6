"""report.html: everything a fit directory holds, on one page that opens from disk.

:func:`write_html` reads only what a fit wrote (summary.json, model.bpm, params/,
plots/), so ``bpm report DIR`` writes the page again for any fit directory, older ones
included: a part the directory lacks is said in a sentence, never an error. The sections
are listed in docs/report.md; blocks and style are :mod:`bpm.runtime.report_page`'s.
"""

from __future__ import annotations

import json
import shlex
import tempfile
from pathlib import Path

from bpm.compiler import __version__
from bpm.compiler.errors import BpmError

from .option_flags import command_flags
from .positions import site_positions
from .report_page import (
    Figures,
    Section,
    columns,
    esc,
    figure,
    first_line,
    listing,
    number,
    page,
    pairs,
    paragraph,
    preformatted,
    read_summary,
    table,
    write_page,
)


def write_html(directory: str | Path, output: str | Path | None = None, name=None) -> Path:
    """Write the report of the fit directory ``directory`` to ``output`` (default
    ``directory/report.html``), whole or not at all; ``name``: how the page names the
    directory (default: as given). Returns the path written."""
    directory = Path(directory)
    info = read_summary(directory)
    shown = str(name if name is not None else directory)
    text = page(
        f"bpm fit: {info.get('model_name') or info.get('model', '')}",
        headline(info, shown),
        sections(directory, info, shown),
        f"page written by bpm {__version__} from the files of {shown}",
    )
    return write_page(Path(output) if output is not None else directory / "report.html", text)


def headline(info: dict, shown: str) -> list[str]:
    """The page header's lines: data, splits, test information."""
    test = info.get("metrics", {}).get("test", {})
    scores = [f"{k} = {number(test[k])}" for k in ("I_var_bits", "I_pred_bits", "R2") if k in test]
    sizes = " / ".join(number(info.get(k)) for k in ("n_train", "n_val", "n_test"))
    return [
        f"data: {info.get('data', '')}; sequences (training / validation / test): {sizes}",
        f"test: {', '.join(scores) or 'no metrics'}; fit directory: {shown}",
    ]


def sections(directory: Path, info: dict, shown: str) -> list[Section]:
    """Every section of the page, in order (figures nothing else shows come last)."""
    figures = Figures(directory / "plots")
    text = read_model(directory)
    model, closed = compiled(text) if text is not None else (None, None)
    parts = [
        Section("model", "Model", model_body(text, info)),
        Section("closed-form", "Closed form", closed_body(closed, text)),
        Section("states", "States and transitions", states_part(model)),
        Section("energies", "Energies", energies_body(figures, info)),
        Section("measurement", "Measurement process", measurement_body(figures, info)),
        Section("history", "Training history", history_body(figures, info)),
        Section("test", "Predicted against observed", test_body(figures, info)),
        Section("parameters", "Parameters", parameters_part(directory, info, figures)),
        Section("identifiability", "What the data determine", identifiability_part(info)),
        Section("data", "Data validation", data_body(info)),
        Section("provenance", "How the fit was made", provenance_body(directory, info, shown)),
    ]
    rest = figures.rest()
    if rest:
        body = figures.show(rest)
        parts.append(Section("other-figures", "Other figures", body))
    return parts


def read_model(directory: Path) -> str | None:
    """The model's source as the fit recorded it (model.bpm), or None."""
    path = directory / "model.bpm"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def model_body(text: str | None, info: dict) -> str:
    named = paragraph(f"model file: {info.get('model', '')}", "muted")
    if text is None:
        why = "a fit saved before bpm recorded its source, or fitted from a generated module"
        return named + paragraph(f"No model.bpm here ({why}); model.py is the generated module.")
    return named + preformatted(text)


def closed_body(closed: str | None, text: str | None) -> str:
    if text is None:
        return paragraph("No model source to derive the closed form from.")
    if closed is None:
        return paragraph("The model source did not compile here, so no closed form is shown.")
    return paragraph("As bpm show prints it: the states, energies, parameters and closed "
                     "forms of the model.") + preformatted(closed)  # fmt: skip


def figures_of(figures: Figures, prefixes, what: str) -> str:
    """Every figure whose name starts with one of ``prefixes``, or a sentence on why
    there is no ``what`` figure."""
    found = [p for prefix in prefixes for p in figures.take(prefix)]
    if found:
        return figures.show(found)
    if not figures.exists:
        return paragraph("No figures: the fit was written without plots (--no-plots).", "muted")
    return paragraph(f"No {what} figure in plots/.", "muted")


def energies_body(figures: Figures, info: dict) -> str:
    intro = paragraph(f"Site energies in the {info.get('gauge', 'recorded')} gauge.")
    errors = [f"errors_{name}." for name in info.get("sites") or {}]
    return intro + figures_of(figures, ("logo_", "pairs_", *errors), "site energy")


def measurement_body(figures: Figures, info: dict) -> str:
    kind = info.get("measurement_kind", "")
    words = paragraph(f"measurement kind: {kind}" if kind else "measurement kind not recorded")
    found = info.get("measurement")
    shown = pairs(found) if isinstance(found, dict) else ""
    if any(p.name == "test_prediction.png" for p in figures.left):  # scores, count pairs
        return words + shown + paragraph("Drawn with the test data, under Predicted against "
                                         "observed: the fitted link and its noise.")  # fmt: skip
    return words + shown + figures_of(figures, ("measurement",), "measurement")


def history_body(figures: Figures, info: dict) -> str:
    stages = info.get("stages") or []
    rows = [[s.get("stage"), s.get("iterations"), s.get("stopped"), s.get("best_val_nll")]
            for s in stages]  # fmt: skip
    shown = table(("stage", "iterations", "stopped", "best validation NLL"), rows) if rows else ""
    steps = paragraph(f"{number(info.get('steps', info.get('epochs')))} optimizer steps in "
                      f"{number(info.get('wall_seconds'))} s.")  # fmt: skip
    done = info.get("convergence") or {}
    if done:
        steps += paragraph(
            f"converged: {number(done.get('converged'))}; final gradient norm "
            f"{number(done.get('gradient_norm'))} (bits per read); stopped: {done.get('stopped')}",
            "" if done.get("converged") else "note",
        )
    return steps + shown + figures_of(figures, ("history",), "history")


def test_body(figures: Figures, info: dict) -> str:
    metrics = info.get("metrics") or {}
    names = list(dict.fromkeys(k for split in metrics.values() for k in (split or {})))
    rows = [[split, *[(values or {}).get(k) for k in names]] for split, values in metrics.items()]
    shown = table(("split", *names), rows) if rows else paragraph("No metrics recorded.")
    return shown + figures_of(figures, ("test_",), "test-data")


def data_body(info: dict) -> str:
    found = info.get("data_validation") or {}
    if not found:
        return paragraph("The fit recorded no data summary.")
    words = paragraph("What reading the data found, kept and set aside.")
    return words + pairs({k: number(v) for k, v in found.items()})


def provenance_body(directory: Path, info: dict, shown: str) -> str:
    facts = {
        "bpm version": info.get("bpm_version", "not recorded"),
        "torch / python": f"{info.get('torch_version', '?')} / {info.get('python_version', '?')}",
        "model file": info.get("model", ""),
        "data file": info.get("data", ""),
        "data sha256": info.get("data_sha256", "not recorded"),
        "measurement kind": info.get("measurement_kind", ""),
        "execution path": info.get("execution_path", "not recorded"),
        "seed": info.get("seed"),
        "optimizer steps": info.get("steps", info.get("epochs")),
        "fit wall time (s)": info.get("wall_seconds"),
        "gauge": info.get("gauge"),
    }
    for extra in ("identifiability", "bootstrap"):
        if isinstance(info.get(extra), dict) and "seconds" in info[extra]:
            facts[f"{extra} wall time (s)"] = info[extra]["seconds"]
    body = pairs({k: number(v) for k, v in facts.items()})
    options = info.get("options")
    if not isinstance(options, dict):
        return body + paragraph("This fit was saved by a bpm that did not record its options.")
    flags, python_only = command_flags(options)
    body += "<h3>The command that makes it again</h3>" + preformatted(
        shlex.join(command(directory, info, shown, flags))
    )
    if python_only:
        words = "Set from Python only (fit(..., name=value)), as the table below gives them: "
        body += paragraph(words + ", ".join(python_only), "note")
    given = set(info.get("options_given") or [])
    rows = [[name, json.dumps(value), "yes" if name in given else ""]
            for name, value in options.items()]  # fmt: skip
    half = (len(rows) + 1) // 2
    shown = [
        table(("option", "value", "set by the caller"), part) for part in (rows[:half], rows[half:])
    ]
    return body + "<h3>Every option</h3>" + columns(shown)


def command(directory: Path, info: dict, shown: str, flags: list[str]) -> list[str]:
    """``bpm fit`` with the model, the data, ``-o`` and every flag the fit used."""
    model = str(info.get("model", ""))
    model = model if model.endswith(".bpm") else str(Path(shown) / "model.bpm")
    argv = ["bpm", "fit", model, str(info.get("data", "")), "-o", shown, *flags]
    if info.get("execution_path") == "stream" and "--stream" not in flags:
        argv.append("--stream")  # chosen by the data's size (or BPM_STREAM): asked for here
    if "standard_error_status" in info:
        argv.append("--uncertainty")
    if info.get("gauge") == "wild-type":
        argv.append("--gauge=wild-type")
        wild = info.get("wild_type") or {}
        if wild.get("source") == "given":
            argv.append(f"--wild-type={wild.get('sequence', '')}")
    if not (directory / "plots").is_dir():
        argv.append("--no-plots")
    return argv


def compiled(text: str):
    """The checked IR of a model source and ``bpm show``'s text of it (closed forms
    omitted above the tree budget); ``(None, None)`` when it does not compile."""
    from bpm.compiler.kinetic import TreeBudgetExceeded
    from bpm.compiler.pipeline import derive, to_ir
    from bpm.compiler.show import describe

    try:
        model = to_ir(text, "model.bpm")
    except BpmError:
        return None, None
    try:
        return model, describe(model, derive(model))
    except TreeBudgetExceeded as over:
        return model, describe(model, None, tree_counts=over.counts)


def states_part(model) -> str:
    """A thermodynamic model's states and energies as a table over its state diagram; a
    kinetic scheme drawn (Graphviz when installed, matplotlib otherwise; a sentence when
    neither works)."""
    if model is None:
        return paragraph("No compiled model to show the states of.", "muted")
    from bpm.compiler.graph import draw, has_graphviz

    how = "Graphviz" if has_graphviz() else "matplotlib (Graphviz's dot is not installed)"
    if model.kind == "thermodynamic":
        from bpm.compiler.symbolic import linear_form_to_sympy, symbols_for

        symbols = symbols_for(model)
        rows = [[s.name, str(linear_form_to_sympy(s.energy, symbols))] for s in model.thermo_states]
        words = f"{len(rows)} states; P(s) = exp(-G_s) / Z. The state diagram is drawn with {how}."
        caption = "each state with its free energy; each arrow a step of binding, labelled "
        caption += "with the energy it adds"
        head = paragraph(words) + table(("state", "free energy G (kT)"), rows)
    else:
        words = f"{len(model.states)} states, {len(model.transitions)} transitions, drawn "
        words += f"with {how}."
        caption, head = "every transition labelled with its rate", paragraph(words)
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = draw(model, Path(folder) / "scheme.svg")
        except (BpmError, OSError) as error:
            why = f"The scheme could not be drawn here ({first_line(error)})"
            return head + paragraph(f"{why}; bpm graph draws it where Graphviz or matplotlib works")
        return head + figure(path, caption)


def parameters_part(directory: Path, info: dict, figures) -> str:
    """The scalar parameters with their errors and units, the sites with their offsets,
    the tables in params/ and the error figures of the scalars."""
    params = info.get("params") or {}
    errors = info.get("standard_errors") or {}
    reasons = info.get("standard_error_reasons") or {}
    spread = (info.get("bootstrap") or {}).get("params") or {}
    header = ["parameter", "value", "± SE", "unit", "kcal/mol", "± SE (kcal/mol)"]
    if spread:
        header += ["bootstrap SE", "bootstrap interval"]
    rows = []
    for name, value in params.items():
        if name.endswith("_kcal_per_mol"):
            continue
        kcal = params.get(f"{name}_kcal_per_mol")
        se = errors.get(name)
        why = reasons.get(name) or reasons.get(name.split(".")[0]) or ""
        row = [name, value, se if se is not None else why or "—",
               "kT" if f"{name}_kcal_per_mol" in params else "as in the model",
               kcal, errors.get(f"{name}_kcal_per_mol")]  # fmt: skip
        if spread:
            found = spread.get(name) or {}
            row += [found.get("se"), f"{number(found.get('low'))} to {number(found.get('high'))}"]
        rows.append(row)
    body = table(header, rows) if rows else paragraph("No scalar parameters recorded.")
    if not errors:
        body += paragraph("No Hessian standard errors: bpm fit --uncertainty gives them.", "muted")
    status = info.get("standard_error_status") or {}
    if status.get("why"):
        body += paragraph(status["why"], "note")
    body += sites(info)
    tables = sorted(p.name for p in (directory / "params").glob("*.csv"))
    if tables:
        body += paragraph("Tables in params/ (kcal/mol, and _kT.csv in kT): " + ", ".join(tables))
    return body + figures.show(figures.take("errors_scalars") + figures.take("bootstrap/"))


def sites(info: dict) -> str:
    """The site energies' positions (as the model file numbers them, and as 0-based
    slices), strands, offsets and wild-type energies."""
    found = info.get("sites") or {}
    rows = [[name, s.get("kind"), site_positions(s, info.get("numbering")), s.get("strand"),
             s.get("offset"), s.get("offset_kcal_per_mol"), s.get("wild_type_energy")]
            for name, s in found.items()]  # fmt: skip
    if not rows:
        return ""
    header = ("site", "kind", "positions", "strand", "offset (kT)", "offset (kcal/mol)",
              "wild-type energy (kT)")  # fmt: skip
    return f"<h3>Sites ({esc(info.get('gauge', ''))} gauge)</h3>" + table(header, rows)


def identifiability_part(info: dict) -> str:
    """Profile-likelihood intervals, the optima of several starts, the unidentified
    combinations and every note of the fit; what to run when there are none."""
    found = info.get("identifiability") or {}
    body = intervals(found) + optima_table(info.get("optima") or [])
    unidentified = info.get("unidentified") or []
    if unidentified:
        body += "<h3>Not identified</h3>" + listing(unidentified)
    boot = info.get("bootstrap") or {}
    notes = [
        info.get("notes"),
        found.get("notes"),
        info.get("uncertainty_notes"),
        boot.get("notes"),
    ]
    notes = [note for group in notes for note in group or []]
    if notes:
        body += "<h3>Notes</h3>" + listing(dict.fromkeys(notes))
    if not body:
        body = paragraph(
            "This fit ran no analysis of what the data determine: --identifiability on gives "
            "profile-likelihood intervals, --starts 2 looks for mirror optima, --uncertainty "
            "gives standard errors and names unidentified combinations.",
            "muted",
        )
    return body


def intervals(found: dict) -> str:
    """The profile-likelihood intervals of summary.json's ``identifiability``."""
    rows = []
    for kind in ("energy_scale", "profile"):
        for name, e in (found.get(kind) or {}).items():
            why = "; ".join(f"{side}: {words}" for side, words in (e.get("open") or {}).items())
            what = "scale" if kind == "energy_scale" else "energy"
            rows.append(
                [name, what, *(e.get(k) for k in ("estimate", "low", "high", "units")), why]
            )
    if not rows:
        return ""
    level = number(100 * found.get("level", 0.95))
    body = f"<h3>Profile-likelihood intervals ({esc(level)}%)</h3>" + table(
        ("quantity", "kind", "estimate", "low", "high", "units", "open side"), rows
    )
    if found.get("at_optimum") is False:
        body += paragraph(f"a profile refit beat the fit: {number(found.get('better'))}", "note")
    return body


def optima_table(optima: list) -> str:
    """Every distinct optimum of several starts, best first."""
    rows = []
    for o in optima:
        energies = {n: e.get("kT") for n, e in (o.get("energies") or {}).items()}
        rows.append([o.get("name"), number(o.get("starts")), o.get("delta_train_nll"),
                     number(energies), number(o.get("matrix_r"))])  # fmt: skip
    if not rows:
        return ""
    header = ("optimum", "starts", "Δ training NLL (bits/read)", "energies (kT)", "matrix r")
    return "<h3>Optima of several starts</h3>" + table(header, rows)
