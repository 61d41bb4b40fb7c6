"""Code generation: a checked model and its derivation to the text of a PyTorch module.

The driver: it names the parts of the generated module in the order they are
written. The module imports only ``torch`` and the standard library and follows
the contract in ``docs/module.md``; the same model always gives the same bytes.

- :mod:`.codegen_writer`: the line writer and literals;
- :mod:`.codegen_printer`: the sympy printer (closed forms as torch code);
- :mod:`.codegen_layout`: how each name of the file is stored (``parameter_layout``);
- :mod:`.codegen_header`: header, docstrings with the closed forms, class attributes;
- :mod:`.codegen_init`: ``__init__``, the parameters and buffers;
- :mod:`.codegen_forward`: energies, probabilities and outputs;
- :mod:`.codegen_kinetic`: transitions, King-Altman trees or state reduction;
- :mod:`.codegen_verbatim`: pastes the model-independent methods (``encode``,
  ``get_params``, ``set_params``) from :mod:`.module_methods`.

Numerics, all in log space:

- site energies are gathers on integer codes, one row of codes per position;
- thermodynamic: ``P = softmax(-G)`` over states, ``G = E @ C^T + c``;
- kinetic: ``log_rates = F @ R^T + r`` with ``F`` the energies and the logs of the
  parameters; each spanning tree's log-weight is ``log_rates @ M^T`` (``M`` the
  tree-by-edge matrix), each state's log-weight a logsumexp over its trees, and
  ``P = softmax`` of those. Above the tree budget, the steady state is solved
  numerically from the rate matrix instead.
"""

from __future__ import annotations

from . import ir, symbolic
from .codegen_context import Context, class_name
from .codegen_forward import write_energy_methods, write_output_methods, write_probability_methods
from .codegen_header import class_doc, model_hash, write_class_attributes, write_header
from .codegen_init import write_init
from .codegen_kinetic import check_rates, write_transitions_table
from .codegen_layout import ParameterSlot, parameter_slots
from .codegen_printer import ModulePrinter
from .codegen_verbatim import paste_method
from .codegen_writer import Writer

__all__ = [
    "ModulePrinter",
    "ParameterSlot",
    "Writer",
    "class_name",
    "generate",
    "model_hash",
    "parameter_slots",
]


def generate(
    model: ir.Model,
    derivation: symbolic.Derivation | None,
    source_name: str,
) -> str:
    """The text of the generated module for ``model`` (read from ``source_name``).

    ``derivation`` (:func:`bpm.compiler.pipeline.closed_forms`) supplies the closed
    forms for the docstrings and, for a kinetic model, the King-Altman trees the
    module sums over. It is ``None`` for a kinetic model above the tree budget:
    that module solves for the steady state numerically.
    """
    c = Context(model, derivation, source_name)
    if model.kind == "kinetic":
        check_rates(c)
        c.trees = None if derivation is None else derivation.trees
    text = _module(c)
    compile(text, f"<bpm module {model.name}>", "exec")
    return text


def _module(c: Context) -> str:
    w, m = c.w, c.model
    write_header(c)
    if m.kind == "kinetic":
        write_transitions_table(c)
    w.line()
    w.line()
    w.line(f"class {c.cls}(torch.nn.Module):")
    with w.indent():
        w.docstring(class_doc(c))
        w.line()
        write_class_attributes(c)
        write_init(c)
        if c.seq is not None:
            L = c.seq.length
            summary = f"Integer codes (index into alphabet) of {L}-letter sequences: "
            paste_method(w, "encode", summary + f"LongTensor[N, {L}].")
            w.line()
        write_energy_methods(c)
        write_probability_methods(c)
        write_output_methods(c)
        paste_method(w, "get_params")
        w.line()
        paste_method(w, "set_params")
    w.line()
    w.line()
    w.line(f"Model = {c.cls}")
    return w.text()
