"""The checker's mechanism block: thermodynamic states or kinetic transitions.

:class:`MechanismChecks` is one part of the checker (:mod:`bpm.compiler.check`):
exactly one mechanism block, distinct states, transitions without self-loops or
repeats, and, for a kinetic scheme, a unique steady state.
"""

from __future__ import annotations

from . import ast, ir
from .errors import BpmModelError, BpmNameError, Span, did_you_mean
from .steady_state import communicating_classes


class MechanismChecks:
    """Mechanism blocks to IR; mixed into the checker.

    The checker provides ``error``, ``errors``, ``warnings``, ``linear`` and ``rate``.
    """

    def block_kind(self, thermo, kinetic) -> str | None:
        blocks = sorted([*thermo, *kinetic], key=lambda b: b.span.start)
        if not blocks:
            self.error(
                BpmModelError,
                "the model has no mechanism",
                self.tree.name.span,
                note="add a 'thermodynamic { ... }' or a 'kinetic { ... }' block",
            )
            return None
        if len(blocks) > 1:
            first = blocks[0]
            for extra in blocks[1:]:
                word = "thermodynamic" if isinstance(extra, ast.ThermoBlock) else "kinetic"
                self.error(
                    BpmModelError,
                    f"a second mechanism block ('{word}')",
                    _keyword(extra),
                    note=f"a model has exactly one thermodynamic or kinetic block; "
                    f"the first is at line {first.span.line}",
                )
            return None
        return "thermodynamic" if thermo else "kinetic"

    def thermo_states(self, block: ast.ThermoBlock) -> tuple[ir.State, ...]:
        seen: dict[str, Span] = {}
        states = []
        for decl in block.states:
            name = decl.name.name
            if name in seen:
                self.error(
                    BpmNameError,
                    f"state '{name}' is already declared (line {seen[name].line})",
                    decl.name.span,
                )
                continue
            seen[name] = decl.name.span
            form = self.linear(decl.energy, integer=True, what="a state energy")
            if form is not None:
                states.append(ir.State(name, form, span=decl.span))
        return tuple(states)

    def transitions(self, block: ast.KineticBlock) -> tuple[ir.Transition, ...]:
        out: list[ir.Transition] = []
        seen: dict[tuple[str, str], Span] = {}
        for decl in block.transitions:
            pairs = [(decl.source, decl.target, decl.rate)]
            if decl.reverse is not None:
                pairs.append((decl.target, decl.source, decl.reverse))
            for source, target, rate_expr in pairs:
                if source.name == target.name:
                    self.error(
                        BpmModelError,
                        f"transition from '{source.name}' to itself",
                        decl.span,
                        note="a self-loop does not change any occupancy; remove it",
                    )
                    break
                key = (source.name, target.name)
                if key in seen:
                    self.error(
                        BpmModelError,
                        f"transition {source.name} -> {target.name} is already declared "
                        f"(line {seen[key].line})",
                        decl.span,
                        note="add the rates into one transition instead",
                    )
                    continue
                seen[key] = decl.span
                rate = self.rate(rate_expr)
                if rate is not None:
                    out.append(ir.Transition(source.name, target.name, rate, span=decl.span))
        return tuple(out)

    def steady_state(self, block: ast.KineticBlock, transitions, states) -> None:
        """The one rule (:mod:`bpm.compiler.steady_state`): exactly one closed class.

        Two or more closed classes are an error naming them; transient states are
        accepted with a warning (their steady-state occupancy is zero).
        """
        if self.errors or len(states) < 2:
            return
        classes = communicating_classes(states, ((t.source, t.target) for t in transitions))
        if classes.unique:
            warning = classes.transient_warning()
            if warning is not None:
                self.warnings.add(warning, _keyword(block))
            return
        notes = [classes.problem()]
        once = [s for s in states if sum(s in (t.source, t.target) for t in transitions) == 1]
        for s in once:
            hint = did_you_mean(s, [o for o in states if o != s])
            if hint:
                notes.append(f"state '{s}' appears only once{hint}")
        self.error(
            BpmModelError,
            "the kinetic scheme has no unique steady state",
            _keyword(block),
            note="; ".join(notes),
        )


def _keyword(block: ast.ThermoBlock | ast.KineticBlock) -> Span:
    """The span of a block's opening keyword, where its errors point."""
    width = len("thermodynamic" if isinstance(block, ast.ThermoBlock) else "kinetic")
    s = block.span
    return Span(s.start, s.start + width, s.line, s.column, s.line, s.column + width)
