"""The kinetic parts of a generated module: transitions, trees and steady states.

``log_rates = rate_coefficients @ features + rate_constant``, the features being
the energies and the logs of the rate parameters. Within the tree budget each
King-Altman tree's log-weight is ``tree_edges @ log_rates`` and a state's weight
a logsumexp over its trees; above it (``trees`` is None) the steady state comes
from a linear solve of the rate matrix.
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
    w = c.w
    w.line("# rate matrix Q (dp/dt = Q p) = rates @ generator, reshaped to [states, states]")
    w.line(f"generator = torch.zeros({E}, {S}, {S})")
    w.line("for j, (source, target) in enumerate(TRANSITIONS):")
    with w.indent():
        w.line("a, b = states.index(source), states.index(target)")
        w.line("generator[j, b, a] += 1.0")
        w.line("generator[j, a, a] -= 1.0")
    w.line(f'self.register_buffer("generator", generator.reshape({E}, {S * S}), persistent=False)')
    w.line("# the first balance equation is replaced by sum(p) = 1")
    w.line(f'self.register_buffer("normalization", torch.eye({S})[0], persistent=False)')


def write_kinetic_probabilities(c: Context) -> None:
    """The body of ``probabilities(E)``: King-Altman trees, or the linear solve."""
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
        "Steady state by a linear solve (more spanning trees than the budget):\n"
        "Q p = 0 with the first balance row replaced by sum(p) = 1. Rates are\n"
        "scaled by their largest one per sequence, which leaves p unchanged."
    )
    S = len(m.states)
    w.line("log_rates = self.log_rates(E)")
    w.line("batch = log_rates.shape[:-1]")
    w.line("log_rates = log_rates.reshape(-1, log_rates.shape[-1])")
    w.line("rates = torch.exp(log_rates - log_rates.amax(dim=-1, keepdim=True))")
    w.line(f"Q = (rates @ self.generator.to(rates.dtype)).reshape(-1, {S}, {S})")
    w.line("A = torch.cat([torch.ones_like(Q[:, :1, :]), Q[:, 1:, :]], dim=1)")
    w.line("b = self.normalization.to(rates.dtype).expand(Q.shape[0], -1)")
    w.line("p = torch.linalg.solve(A, b).clamp_min(0.0)")
    w.line("p = p / p.sum(dim=-1, keepdim=True)")
    w.line(f"return p.reshape(*batch, {S})")


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
