"""The arithmetic of ``bpm compare``: paired differences, likelihood-ratio tests, AIC
and BIC, and which models are nested in which.

Everything here takes plain numbers and arrays (log-likelihoods in nats) so that it can
be checked against hand computations; :mod:`bpm.runtime.compare` fits the models and
feeds it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def paired_difference(ll_a: np.ndarray, ll_b: np.ndarray) -> dict:
    """The summed log-likelihood difference of model A over model B on the same rows
    (each ``[N]``, nats, row ``i`` the same sequence's reads in both) and its standard
    error, paired over the rows: ``difference = sum(d)``, ``se = sqrt(N) * sd(d)`` with
    ``d = ll_a - ll_b`` (``ddof=1``), so noise the two models share cancels in ``d``.
    ``se_unpaired`` is what the error would be if the rows were not the same
    (``sqrt(N (var(ll_a) + var(ll_b)))``), for contrast.

    >>> found = paired_difference(np.array([-1.0, -2.0, -3.0]), np.array([-1.5, -2.0, -4.0]))
    >>> found["difference"], round(found["se"], 6), found["rows"]
    (1.5, 0.866025, 3)
    """
    a, b = np.asarray(ll_a, dtype=float), np.asarray(ll_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired rows differ: {a.shape} and {b.shape}")
    d = a - b
    n = len(d)
    if n < 2:
        return {"difference": float(d.sum()), "se": math.nan, "se_unpaired": math.nan, "rows": n}
    se = float(math.sqrt(n) * d.std(ddof=1))
    unpaired = float(math.sqrt(n * (a.var(ddof=1) + b.var(ddof=1))))
    return {"difference": float(d.sum()), "se": se, "se_unpaired": unpaired, "rows": n}


def likelihood_ratio(nll_nested: float, nll_full: float, df: int) -> dict:
    """The likelihood-ratio test of a nested model against the model it is nested in,
    from their total training NLLs (nats): ``statistic = 2 (nll_nested - nll_full)``,
    p-value of chi-square with ``df`` degrees of freedom (the difference in learned
    parameters). A negative statistic (the larger model fitted worse: an optimizer's
    miss) is kept as it is, with p = 1.

    >>> found = likelihood_ratio(100.0, 98.0, 1)
    >>> found["statistic"], round(found["p_value"], 6)
    (4.0, 0.0455)
    """
    statistic = 2.0 * (nll_nested - nll_full)
    p = float(stats.chi2.sf(statistic, df)) if statistic > 0 and df > 0 else 1.0
    return {"statistic": float(statistic), "df": int(df), "p_value": p}


def aic(nll: float, k: int) -> float:
    """Akaike's criterion ``2 k + 2 NLL`` (NLL in nats; lower is better).

    >>> aic(10.0, 3)
    26.0
    """
    return 2.0 * k + 2.0 * nll


def bic(nll: float, k: int, n: float) -> float:
    """The Bayesian (Schwarz) criterion ``k ln(n) + 2 NLL`` for ``n`` observations.

    >>> round(bic(10.0, 3, math.e**2), 12)
    26.0
    """
    return k * math.log(n) + 2.0 * nll


def nested_in(small: dict, large: dict) -> bool:
    """Whether model ``small`` is detected as model ``large`` with parameters fixed.

    Each is ``{"learned": {name: shape}, "sites": {name: site}, "alphabet", "length",
    "output"}`` (learned parameter names with their shapes; each site energy's window).
    The rule, kept simple: the same sequence and output, ``small``'s learned names a
    strict subset of ``large``'s, each with the same shape, and every site energy of
    ``small`` reading the same window in ``large``. It looks at names only, not at the
    states: declare a pair (``--nested``) where the names do not tell.

    >>> a = {"learned": {"G": (3, 4), "t": ()}, "sites": {"G": (0, 3)}, "alphabet": "dna",
    ...      "length": 3, "output": "t"}
    >>> b = {**a, "learned": {**a["learned"], "G_I": ()}}
    >>> nested_in(a, b), nested_in(b, a), nested_in(a, a)
    (True, False, False)
    """
    same = all(small[key] == large[key] for key in ("alphabet", "length", "output"))
    names, bigger = set(small["learned"]), set(large["learned"])
    if not same or not names < bigger:
        return False
    if any(tuple(small["learned"][n]) != tuple(large["learned"][n]) for n in names):
        return False
    return all(large["sites"].get(n) == site for n, site in small["sites"].items())


def nested_pairs(descriptions: dict[str, dict], declared=()) -> list[tuple[str, str, str]]:
    """Every nested pair ``(small, large, how)`` among ``descriptions`` (by model name):
    those ``declared`` (``(small, large)`` pairs, ``how="declared"``) and those
    :func:`nested_in` finds (``how="detected"``), each once, in name order."""
    found = {(a, b): "declared" for a, b in declared}
    for a in sorted(descriptions):
        for b in sorted(descriptions):
            if a != b and (a, b) not in found and nested_in(descriptions[a], descriptions[b]):
                found[(a, b)] = "detected"
    return [(a, b, how) for (a, b), how in sorted(found.items())]


def p_text(p: float) -> str:
    """A p-value in words for the table; one below what a float holds says so.

    >>> p_text(0.0), p_text(0.0455), p_text(1e-12)
    ('< 1e-300', '0.0455', '1e-12')
    """
    return "< 1e-300" if p < 1e-300 else f"{p:.3g}"
