"""The kinetic parts of a generated module: transitions, trees and steady states.

``log_rates = rate_coefficients @ features + rate_constant``, the features being
the energies and the logs of the rate parameters. Within the tree budget each
King-Altman tree's log-weight is ``tree_edges @ log_rates`` and a state's weight
a logsumexp over its trees; above it (``trees`` is None) the steady state comes
from state reduction (GTH) of the log rate matrix, in float64.
"""

from __future__ import annotations

from .codegen_context import Context
from .codegen_layout import log_code
from .codegen_writer import float_literal as _f
from .errors import BpmModelError


def check_rates(c: Context) -> None:
    """Every parameter a rate multiplies must be positive (its log is taken)."""
    for t in c.model.transitions:
        for name, _ in t.rate.params:
            if not c.model.param(name).positive:
                raise BpmModelError(
                    f"rate of {t.source} -> {t.target} uses '{name}', which may be negative",
                    t.span,
                )


def write_transitions_table(c: Context) -> None:
    """Module-level ``TRANSITIONS`` and, within the budget, ``TREES``."""
    w, m = c.w, c.model
    w.line()
    w.line()
    w.line("# Transitions: (source, target), indexed as the columns of log_rates.")
    w.line("TRANSITIONS = (")
    with w.indent():
        for j, t in enumerate(m.transitions):
            w.line(f"({t.source!r}, {t.target!r}),  # {j}: {c.rate_text(t)}")
    w.line(")")
    if c.trees is None:
        w.line()
        w.line("# The log of a rate that is not there: finite, so gradients stay finite.")
        w.line("NO_RATE = -1e30")
        return
    w.line()
    w.line("# King-Altman: the spanning trees directed into each state, as indices")
    w.line("# into TRANSITIONS; a state's weight is the sum over its trees of rate products.")
    w.line("TREES = {")
    with w.indent():
        for s in m.states:
            trees = c.trees[s]
            if not trees:
                w.line(f"{s!r}: (),")
                continue
            w.line(f"{s!r}: (")
            with w.indent():
                per_line = max(1, 80 // (4 * max(len(trees[0]), 1) + 4))
                for k in range(0, len(trees), per_line):
                    w.line(" ".join(f"{tree!r}," for tree in trees[k : k + per_line]))
            w.line("),")
    w.line("}")


def rate_features(c: Context) -> list[tuple[str, str]]:
    """Columns of the log-rate feature matrix: (key in log_rate, code of its value)."""
    feats = [(n, f"E[..., {k}]") for k, n in enumerate(c.energy_names)]
    used = sorted({n for t in c.model.transitions for n, _ in t.rate.params})
    feats += [(f"log:{n}", log_code(c.slot(n))) for n in used]
    return feats


def write_kinetic_buffers(c: Context) -> None:
    """The rate buffers, then the tree buffers or the rate-matrix generator."""
    w, m = c.w, c.model
    feats = rate_features(c)
    S, E = len(m.states), len(m.transitions)
    w.line("# log_rates = rate_coefficients @ features + rate_constant, the features being")
    logs = ", ".join(k[4:] for k, _ in feats if k.startswith("log:")) or "no parameters"
    w.line(f"# the energies then the logs of {logs}")
    w.line("self.register_buffer(")
    with w.indent():
        w.line('"rate_coefficients",')
        w.line("torch.tensor([")
        with w.indent():
            for j, t in enumerate(m.transitions):
                row = ", ".join(_f(t.rate.log_rate.coefficient(k)) for k, _ in feats)
                w.line(f"[{row}],  # {j}: {t.source} -> {t.target}")
        w.line(f"]).reshape({E}, {len(feats)}),")
        w.line("persistent=False,")
    w.line(")")
    consts = ", ".join(_f(t.rate.log_rate.constant) for t in m.transitions)
    w.line(
        f'self.register_buffer("rate_constant", torch.tensor([{consts}]){c.column}, '
        "persistent=False)"
    )
    w.line(f"states = {tuple(m.states)!r}")
    if c.trees is not None:
        _tree_buffers(c, S, E)
    else:
        _generator_buffers(c, S, E)


def _tree_buffers(c: Context, S: int, E: int) -> None:
    w = c.w
    w.line("# tree_edges[t, j] = 1 when transition j is in tree t (trees of all states in order)")
    w.line("trees = [tree for state in states for tree in TREES[state]]")
    w.line(f"tree_edges = torch.zeros(len(trees), {E}, dtype=torch.long)")
    w.line("for t, tree in enumerate(trees):")
    with w.indent():
        w.line("tree_edges[t, list(tree)] = 1")
    w.line('self.register_buffer("tree_edges", tree_edges, persistent=False)')
    w.line("# tree_index[s, k]: the k-th tree of state s; tree_mask is -inf on padding")
    w.line("width = max(len(TREES[state]) for state in states)")
    w.line(f"tree_index = torch.zeros({S}, width, dtype=torch.long)")
    w.line(f"tree_mask = torch.full(({S}, width), -math.inf)")
    w.line("start = 0")
    w.line("for s, state in enumerate(states):")
    with w.indent():
        w.line("count = len(TREES[state])")
        w.line("tree_index[s, :count] = torch.arange(start, start + count)")
        w.line("tree_mask[s, : max(count, 1)] = 0.0")
        w.line("start += count")
    w.line('self.register_buffer("tree_index", tree_index, persistent=False)')
    w.line(f'self.register_buffer("tree_mask", tree_mask{c.column}, persistent=False)')
    if any(not c.trees[s] for s in c.model.states):
        w.line("# states no tree leads into (transient) have occupancy zero")
        w.line(
            'self.register_buffer("state_mask", torch.tensor('
            "[0.0 if TREES[state] else -math.inf for state in states])"
            f"{c.column}, persistent=False)"
        )


def _generator_buffers(c: Context, S: int, E: int) -> None:
    """The index that gathers log-rates into the log rate matrix, states reordered so a
    state of the closed class comes first (the state reduction needs it there)."""
    w, m = c.w, c.model
    order = _reduction_order(c)
    pairs: dict[tuple[int, int], list[int]] = {}
    for j, t in enumerate(m.transitions):
        pairs.setdefault((order.index(t.source), order.index(t.target)), []).append(j)
    width = max(len(v) for v in pairs.values())
    index = [[E] * width for _ in range(S * S)]
    for (a, b), js in pairs.items():
        index[a * S + b][: len(js)] = js
    w.line("# log rate matrix [states, states] in reduction order: pair_index gathers each")
    w.line(f"# pair's transitions from the log-rates ({E}: no transition)")
    w.line(f"# reduction order: {', '.join(order)}")
    w.line(
        f'self.register_buffer("pair_index", torch.tensor({index!r}).reshape({S * S}, {width}), '
        "persistent=False)"
    )
    w.line(
        f'self.register_buffer("state_position", torch.tensor('
        f"{[order.index(s) for s in m.states]!r}), persistent=False)"
    )


def _reduction_order(c: Context) -> list[str]:
    from .steady_state import classes_of

    closed = classes_of(c.model).closed
    first = closed[0][0] if closed else c.model.states[0]
    return [first, *(s for s in c.model.states if s != first)]


def write_kinetic_probabilities(c: Context) -> None:
    """The body of ``probabilities(E)``: King-Altman trees, or state reduction."""
    w, m = c.w, c.model
    if c.trees is not None:
        w.docstring(
            "King-Altman: log w(s) = logsumexp over trees into s of summed log-rates;\n"
            "P = softmax(log w) over states (states as rows inside)."
        )
        w.line("log_rates = self.log_rates(E)")
        w.line(f"tree_log_weights = self.tree_edges.to(log_rates.dtype) @ log_rates{c.T}")
        w.line("log_w = torch.logsumexp(tree_log_weights[self.tree_index] + self.tree_mask, dim=1)")
        if any(not c.trees[s] for s in m.states):
            w.line("log_w = log_w + self.state_mask")
        w.line(f"return torch.softmax(log_w, dim=0){c.T}")
        return
    w.docstring(
        "Steady state by state reduction (Grassmann, Taksar & Heyman 1985) in log\n"
        "space and float64: more spanning trees than the budget. Every step adds\n"
        "positive terms (logaddexp), so rates spanning exp(+-500) stay exact."
    )
    S = len(m.states)
    w.line("dtype = E.dtype")
    w.line("log_rates = self.log_rates(E).double()")
    w.line("batch = log_rates.shape[:-1]")
    w.line("log_rates = log_rates.reshape(-1, log_rates.shape[-1])")
    w.line("none = torch.full_like(log_rates[:, :1], NO_RATE)")
    w.line("padded = torch.cat([log_rates, none], dim=1)")
    w.line(f"L = torch.logsumexp(padded[:, self.pair_index], dim=-1).reshape(-1, {S}, {S})")
    w.line("columns, exits = [], []")
    w.line(f"for k in range({S - 1}, 0, -1):")
    with w.indent():
        w.line("exit_k = torch.logsumexp(L[:, k, :k], dim=-1)  # log of k's rate out to states < k")
        w.line("columns.append(L[:, :k, k])")
        w.line("exits.append(exit_k)")
        w.line("through = L[:, :k, k, None] + L[:, k, None, :k] - exit_k[:, None, None]")
        w.line("L = torch.logaddexp(L[:, :k, :k], through)")
    w.line("log_p = [torch.zeros_like(log_rates[:, 0])]")
    w.line("for column, exit_k in zip(reversed(columns), reversed(exits)):")
    with w.indent():
        w.line("log_p.append(torch.logsumexp(torch.stack(log_p, -1) + column, dim=-1) - exit_k)")
    w.line("p = torch.softmax(torch.stack(log_p, dim=-1), dim=-1)[:, self.state_position]")
    w.line(f"return p.reshape(*batch, {S}).to(dtype)")


def write_log_rates(c: Context) -> None:
    """``log_rates(E)``: the log of each transition's rate, [N, transitions]."""
    w = c.w
    w.line("def log_rates(self, E):")
    with w.indent():
        w.docstring("Log of each transition's rate, columns in TRANSITIONS order.")
        logs = [code for key, code in rate_features(c) if key.startswith("log:")]
        if logs:
            w.line(f"logs = torch.stack([{', '.join(logs)}])")
            if c.seq:
                w.line("logs = logs.unsqueeze(-1).expand(-1, E.shape[0])")
            w.line(f"features = torch.cat([E{c.T}, logs])")
        else:
            w.line(f"features = E{c.T}")
        w.line(f"return (self.rate_coefficients @ features + self.rate_constant){c.T}")
    w.line()
