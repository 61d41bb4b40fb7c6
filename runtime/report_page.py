"""The building blocks of report.html: escaped text, tables, embedded figures, the page,
reading summary.json and writing the page.

Everything a page holds is inside it: figures as ``data:`` URIs (base64 PNG or SVG),
the style in one ``<style>`` element, no script and no address outside the page, so it
opens from disk, offline, the same anywhere. Every value is escaped with :mod:`html`.
:mod:`bpm.runtime.report_html` writes the sections with these.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bpm.compiler.errors import BpmError

#: Media types of the figures a page embeds, by file suffix.
MEDIA = {".png": "image/png", ".svg": "image/svg+xml"}

#: Captions of the figures in plots/, by the start of their file name.
CAPTIONS = {
    "bootstrap/errors_scalars": "the scalar energies with their bootstrap standard errors",
    "bootstrap/errors_": "every matrix entry (−ΔG, as in the logo) above its bootstrap "
    "standard error",
    "logo_": "sequence logo of the site's additive energies (kcal/mol); letters up lower "
    "the energy (bind, or fold, more strongly)",
    "pairs_": "pair energies of the site (kcal/mol); red raises the energy (binds less)",
    "errors_scalars": "the scalar energies with their standard errors",
    "errors_": "every matrix entry (−ΔG, as in the logo; blue lowers the energy) above its "
    "standard error (grey: none)",
    "measurement": "the learned measurement process p(bin | t) over the test data's range",
    "history": "training and validation NLL and I_var over the optimizer steps; the "
    "optimizer stages are marked",
    "test_t_by_bin": "test reads: the predicted output in each sorted bin",
    "test_prediction": "test data: observed against predicted",
}

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1d2125; margin: 0; background: #f6f7f9; }
header { background: #23395b; color: #fff; padding: 18px 28px 14px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 2px 0; opacity: 0.9; }
nav { background: #fff; border-bottom: 1px solid #d8dde3; padding: 8px 28px;
      position: sticky; top: 0; display: flex; flex-wrap: wrap; gap: 2px 16px; }
nav a { color: #23395b; text-decoration: none; font-size: 13px; white-space: nowrap; }
.columns { display: flex; flex-wrap: wrap; gap: 0 36px; align-items: flex-start; }
main { max-width: 1100px; margin: 0 auto; padding: 8px 28px 40px; }
section { background: #fff; border: 1px solid #d8dde3; border-radius: 6px;
          margin: 18px 0; padding: 4px 20px 14px; }
h2 { font-size: 19px; border-bottom: 1px solid #e4e7eb; padding-bottom: 6px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
pre { background: #f3f5f7; border: 1px solid #e1e5e9; padding: 10px 12px;
      white-space: pre-wrap; overflow-wrap: anywhere;
      font: 12.5px/1.4 ui-monospace, Menlo, Consolas, monospace; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13.5px; }
th, td { border-bottom: 1px solid #e4e7eb; padding: 3px 10px 3px 0; text-align: left;
         vertical-align: top; }
th { color: #4a535c; font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; text-align: right; }
figure { margin: 10px 0 16px; }
figure img { max-width: 100%; height: auto; border: 1px solid #eceff2; }
figcaption { font-size: 13px; color: #4a535c; }
.note { color: #6b4e00; background: #fff8e1; border-left: 3px solid #e0b100;
        padding: 4px 10px; }
.muted { color: #6a737d; }
footer { text-align: center; color: #6a737d; font-size: 12px; padding: 0 0 24px; }
"""


@dataclass(frozen=True)
class Section:
    """One part of the page: its anchor ``key``, its heading and its HTML ``body``."""

    key: str
    title: str
    body: str


def esc(value) -> str:
    """``value`` as text safe inside an element or a quoted attribute.

    >>> esc("<b> & 'x'")
    '&lt;b&gt; &amp; &#x27;x&#x27;'
    """
    return html.escape(str(value), quote=True)


def number(value) -> str:
    """A value of summary.json as a person reads it: floats to four significant digits,
    None (a null) as a dash, lists joined, mappings as ``key: value``.

    >>> number(0.716176), number(None), number(50518), number([1.5, "a"]), number(True)
    ('0.7162', '—', '50,518', '1.5, a', 'yes')
    """
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(number(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {number(v)}" for k, v in value.items())
    return str(value)


def paragraph(text: str, kind: str = "") -> str:
    """A paragraph of plain text; ``kind`` ``"note"`` or ``"muted"`` styles it."""
    return f'<p class="{kind}">{esc(text)}</p>' if kind else f"<p>{esc(text)}</p>"


def preformatted(text: str) -> str:
    """Text shown as written (model source, closed forms, a command)."""
    return f"<pre>{esc(text.rstrip())}</pre>"


def listing(items) -> str:
    """An unordered list of plain-text items (empty when there are none)."""
    items = [esc(item) for item in items]
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>" if items else ""


def table(header, rows) -> str:
    """A table of plain-text cells under ``header`` (none when empty); cells of numbers
    (ints, floats) align right."""
    head = "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead>"
    body = []
    for row in rows:
        cells = []
        for cell in row:
            numeric = isinstance(cell, (int, float)) and not isinstance(cell, bool)
            shown = esc(number(cell))
            cells.append(f'<td class="num">{shown}</td>' if numeric else f"<td>{shown}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>{head if header else ''}<tbody>{''.join(body)}</tbody></table>"


def columns(parts: list[str]) -> str:
    """Blocks side by side (wrapping on a narrow window)."""
    return '<div class="columns">' + "".join(f"<div>{part}</div>" for part in parts) + "</div>"


def pairs(mapping: dict) -> str:
    """A two-column table: each key and its value."""
    return table((), ([str(k), v] for k, v in mapping.items())) if mapping else ""


def data_uri(path: Path) -> str:
    """The file at ``path`` (a .png or .svg) as a ``data:`` URI."""
    media = MEDIA[path.suffix.lower()]
    return f"data:{media};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def figure(path: Path, caption: str, label: str | None = None) -> str:
    """An embedded figure with its caption, after its ``label`` (default: its file name)."""
    label = label or path.name
    alt = esc(f"{label}: {caption}")
    words = f"<b>{esc(label)}</b>: {esc(caption)}" if caption else f"<b>{esc(label)}</b>"
    return (
        f'<figure><img src="{data_uri(path)}" alt="{alt}"><figcaption>{words}</figcaption></figure>'
    )


def page(title: str, lines: list[str], sections: list[Section], footer: str) -> str:
    """The whole document: a header (``title`` and a few ``lines``), links to every
    section, the sections, a footer."""
    nav = "".join(f'<a href="#{esc(s.key)}">{esc(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{esc(s.key)}"><h2>{esc(s.title)}</h2>{s.body}</section>' for s in sections
    )
    head = "".join(f"<p>{esc(line)}</p>" for line in lines)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<header><h1>{esc(title)}</h1>{head}</header>\n<nav>{nav}</nav>\n"
        f"<main>\n{body}\n</main>\n<footer>{esc(footer)}</footer>\n</body>\n</html>\n"
    )


class Figures:
    """The figures of a plots/ folder (PNG and SVG, bootstrap/ included), each handed
    out once: what no section takes is shown at the end."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.exists = folder.is_dir()
        found = sorted(folder.rglob("*")) if self.exists else []
        self.left = [p for p in found if p.suffix.lower() in MEDIA and p.is_file()]

    def label(self, path: Path) -> str:
        """``path`` as it is in plots/ (``history.png``, ``bootstrap/errors_G.png``)."""
        return path.relative_to(self.folder).as_posix()

    def take(self, prefix: str) -> list[Path]:
        """The figures not yet taken whose paths in plots/ start with ``prefix``."""
        taken = [p for p in self.left if self.label(p).startswith(prefix)]
        self.left = [p for p in self.left if p not in taken]
        return taken

    def show(self, paths: list[Path]) -> str:
        """``paths`` embedded, each labelled and captioned (:func:`caption`)."""
        return "".join(figure(p, caption(self.label(p)), self.label(p)) for p in paths)

    def rest(self) -> list[Path]:
        """The figures no section took."""
        return self.take("")


def caption(name: str) -> str:
    """The caption of a figure in plots/, by its path there."""
    return next((words for start, words in CAPTIONS.items() if name.startswith(start)), "")


def first_line(error: Exception) -> str:
    """What went wrong in one line: a BpmError's message, else the error's first line."""
    if isinstance(error, BpmError) and error.diagnostics:
        return error.diagnostics[0].message
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def write_page(target: Path, text: str) -> Path:
    """Write ``text`` to ``target`` whole or not at all (beside it, then renamed)."""
    tmp = None
    try:
        handle, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as error:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise BpmError(f"cannot write {target}: {error.strerror or error}") from None
    return target


def read_summary(directory: Path) -> dict:
    """summary.json of ``directory``; a BpmError when there is none or it is not JSON."""
    path = directory / "summary.json"
    if not path.is_file():
        raise BpmError(f"{directory} is not a bpm fit directory: it has no summary.json")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BpmError(f"{path} is not valid JSON") from None
    if not isinstance(info, dict):
        raise BpmError(f"{path} is not a bpm summary (not a JSON object)")
    return info
