"""Plain-language messages for the directions of a likelihood that the data do not fix.

:func:`describe` groups the parameters tied together by flat directions of the
profiled, gauge-fixed Hessian (found by :func:`bpm.runtime.uncertainty.analyze`) and
says what the data fix, e.g. "k_on and G_R.offset appear only as the combination
k_on·exp(-G_R.offset): the data fix the combination, not each". Coordinates are the
stored ones: kT for energies, the log of the distance to the bound for bounded
parameters (``transform`` ``lower`` or ``upper``), so moves along a log print as
products and powers and moves along an energy as sums or Boltzmann factors.
"""

from __future__ import annotations

import numpy as np

LOG_TRANSFORMS = ("lower", "upper")


def describe(
    null: np.ndarray,
    k_names: list[str],
    alone: np.ndarray,
    kinds: dict[str, str],
    involvement: float,
    absorbing: bool,
    free=(),
) -> list[str]:
    """One message per group of parameters tied together by unidentified directions.

    ``null`` holds orthonormal flat directions in the scaled, gauge-fixed coordinates
    (one row per coordinate, named by ``k_names``); ``alone`` is each coordinate's own
    curvature, ``kinds`` each parameter's bound transform, ``absorbing`` whether a
    measurement process was profiled out (so a lone flat parameter is one it absorbs).
    The projector on ``null`` does not depend on which basis the eigensolver returned,
    so the groups and counts below do not either. Every name in ``free`` (the parameters
    whose standard error is reported as ``inf``) appears in some message.
    """
    if null.shape[1] == 0:
        return []
    proj = null @ null.T
    order = list(dict.fromkeys(k_names))
    index = {n: [i for i, c in enumerate(k_names) if c == n] for n in order}
    weight = {n: float(np.trace(proj[np.ix_(ix, ix)])) for n, ix in index.items()}
    involved = [n for n in order if weight[n] > involvement or n in free]
    link = {
        (a, b): float(np.abs(proj[np.ix_(index[a], index[b])]).max())
        for a in involved
        for b in involved
    }
    groups: list[list[str]] = []
    for n in involved:
        joined = [g for g in groups if any(link[(n, m)] > involvement / 2 for m in g)]
        merged = [n] + [m for g in joined for m in g]
        groups = [g for g in groups if g not in joined] + [sorted(merged, key=order.index)]
    messages = []
    for group in sorted(groups, key=lambda g: order.index(g[0])):
        ix = [i for n in group for i in index[n]]
        # Flat directions lying (mostly) on this group's coordinates.
        sv = np.linalg.svd(null[ix, :], compute_uv=False)
        dims = max(int((sv > np.sqrt(0.5)).sum()), 1)
        if len(group) == 1:
            absorbed = absorbing and float(np.max(alone[ix])) > 0
            messages.append(_single(group[0], absorbed, kinds[group[0]]))
            continue
        messages.append(group_message(group, proj[np.ix_(ix, ix)], ix, k_names, kinds, dims))
    return messages


def _single(name: str, absorbed: bool, kind: str = "identity") -> str:
    if absorbed and kind in LOG_TRANSFORMS:
        return (
            f"{name} is not identified: it only sets the overall scale of t, which is "
            "absorbed by the measurement process (only t relative to the sort bins "
            "matters), so the data do not fix it"
        )
    if absorbed:
        return (
            f"{name} is not identified: a change in it is absorbed by the measurement "
            "process (only t relative to the sort bins matters), so the data do not fix it"
        )
    return f"{name} is not identified: it does not change the likelihood of these data"


def group_message(group, sub, ix, k_names, kinds, dims) -> str:
    """The message for several parameters tied by ``dims`` flat directions.

    ``sub`` is the flat projector restricted to the group's coordinates ``ix`` (indices
    into ``k_names``); two parameters on one direction get their invariant combination,
    more get the joint move that leaves the likelihood unchanged.
    """
    _, v = np.linalg.eigh(sub)
    direction = v[:, -1]
    if len(group) == 2 and dims == 1:
        a, b = group
        va = _component(direction, ix, k_names, a)
        vb = _component(direction, ix, k_names, b)
        if va is not None and vb is not None:
            combo = combination(a, va, kinds[a], b, vb, kinds[b])
            return f"{a} and {b} appear only as {combo}: the data fix the combination, not each"
    if dims == 1:
        move = _movement(group, direction, ix, k_names, kinds)
        return (
            f"{join_names(group)} are not separately identified: the likelihood does not "
            f"change when they move together ({move}), so the data fix only the "
            "combinations left unchanged by that joint move"
        )
    return (
        f"{join_names(group)} are not separately identified: the likelihood does not "
        f"change along {dims} independent directions of joint change in these parameters, "
        "so the data fix only the combinations left unchanged by those moves"
    )


def _movement(group, direction, ix, k_names, kinds) -> str:
    """A flat direction in words: ``k_on ×e^s, G_R.offset +1·s`` (largest part = 1)."""
    parts = []
    biggest = float(np.max(np.abs(direction))) or 1.0
    for name in group:
        value = _component(direction, ix, k_names, name)
        if value is None:
            parts.append(f"the entries of {name} shift")
            continue
        c = value / biggest
        if abs(c) < 0.05:
            continue
        r = _nice(c)
        if kinds[name] in LOG_TRANSFORMS:
            parts.append(f"{name} ×e^({r}·s)")
        else:
            parts.append(f"{name} {'+' if c >= 0 else '-'}{_nice(abs(c))}·s kT")
    return ", ".join(parts)


def _component(direction, ix, names, name) -> float | None:
    """The null direction's component on a scalar parameter (None for a matrix)."""
    positions = [k for k, i in enumerate(ix) if names[i] == name]
    if len(positions) != 1:
        return None
    return float(direction[positions[0]])


def combination(a, va, kind_a, b, vb, kind_b) -> str:
    """The combination left unchanged by moving along (va, vb) in stored coordinates.

    Invariant: ``vb * z_a - va * z_b``. Logs of rates print as products and powers,
    energies as ``exp(-E)`` factors next to a rate, or as sums and differences.
    """
    ca, cb = vb, -va
    if abs(ca) < 0.9 * abs(cb):
        a, b, ca, cb, kind_a, kind_b = b, a, cb, ca, kind_b, kind_a
    ratio = cb / ca
    log_a = kind_a in LOG_TRANSFORMS
    log_b = kind_b in LOG_TRANSFORMS
    r = _nice(ratio)
    if log_a and log_b:
        if r == "1":
            return f"their product {a}·{b}"
        if r == "-1":
            return f"their ratio {a}/{b}"
        return f"the combination {a}·{b}^{r}"
    if log_a and not log_b:
        # z_a + ratio * E_b  ->  a * exp(ratio * E_b)
        power = _nice(-ratio)
        factor = f"exp(-{b})" if power == "1" else f"exp(-{power}·{b})"
        return f"the combination {a}·{factor}"
    if log_b and not log_a:
        # z_b + E_a / ratio  ->  b * exp(E_a / ratio)
        power = _nice(-1.0 / ratio) if ratio else "0"
        factor = f"exp(-{a})" if power == "1" else f"exp(-{power}·{a})"
        return f"the combination {b}·{factor}"
    if r == "1":
        return f"their sum {a} + {b}"
    if r == "-1":
        return f"their difference {a} - {b}"
    return f"the combination {a} + {r}·{b}"


def _nice(x: float) -> str:
    for whole in range(-4, 5):
        if whole and abs(x - whole) < 0.05 * max(1.0, abs(whole)):
            return str(whole)
    return f"{x:.2f}"


def join_names(items) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# ---------------------------------------------------------------- is this an optimum?

#: ``Uncertainty.status`` and the per-parameter reasons, as summary.json writes them.
OK = "ok"
NOT_AT_OPTIMUM = "not at an optimum"
NOT_IDENTIFIED = "not identified"


def optimum_words(
    gradient_norm: float,
    tol: float,
    converged: bool | None,
    negative: int,
    involved: list[str],
) -> str:
    """Why a point is not an optimum of the likelihood, so has no standard errors.

    ``gradient_norm`` is in bits per read (``nan`` when unknown), ``tol`` the norm below
    which a point counts as stationary, ``converged`` what the fit said of itself (None:
    not told), ``negative`` the number of directions of downward curvature and
    ``involved`` the parameters they move.
    """
    reasons = []
    steep = not (converged or gradient_norm < tol)
    if steep:
        said = "the fit did not converge and " if converged is False else ""
        reasons.append(
            f"{said}the gradient of the training NLL is {gradient_norm:.1e} bits per read "
            f"(stationary: below {tol:.0e})"
        )
    if negative:
        where = f", moving {join_names(involved)}" if involved else ""
        reasons.append(
            f"the likelihood curves downward along {negative} direction(s){where} (a saddle)"
        )
    return (
        "no standard errors: the fit is not at an optimum of the likelihood ("
        + "; ".join(reasons)
        + "), so its curvature is not a covariance and the standard errors are reported "
        "as null ('not at an optimum'); parameters the data do not fix are still named "
        "('not identified'). Refit to convergence for standard errors "
        "(docs/fitting.md, 'Standard errors')"
    )


def refit_words(steps: int, before: float, after: float) -> str:
    """The note of an analysis made at a refitted point instead of the fit's own."""
    return (
        f"analyzed after a refit of the training reads ({steps} float64 L-BFGS iterations, "
        f"gradient {before:.1e} -> {after:.1e} bits per read): the standard errors are "
        "those of the refitted optimum, not of the fit's own (early-stopped) values"
    )
