"""``bpm compare``: several models fitted to the same reads, ranked, with paired errors.

Every model is fitted on the same split of the same data (read once here, so each
training, validation and test row is the same sequence for every model) with the same
options, those of ``bpm fit`` (:class:`~bpm.runtime.options.FitOptions`): ``init`` and
``fix`` apply to each model that has the name (:func:`model_options`). A plain fit of
each runs in a fresh interpreter, all at the same time, one torch thread each unless
``threads`` says otherwise, as the starts of :mod:`bpm.runtime.multistart` are
(:func:`~bpm.runtime.multistart.run_start`); with several ``starts``, a ``bootstrap`` or
``identifiability``, which spread their own refits over the CPUs, the models are fitted
one after another through :func:`bpm.runtime.fit.fit`. The data stay in memory, full
batch (a training split of 100,000 rows or more steps through minibatches in memory):
streamed and distributed fits are refused. The models are ranked by test
log-likelihood per read, best first; each one's difference from the best is paired over
the test sequences (:func:`~bpm.runtime.compare_stats.paired_difference`).
Nested pairs, declared or detected (:func:`~bpm.runtime.compare_stats.nested_pairs`),
get a likelihood-ratio test on the training reads; AIC and BIC are given for every
model. docs/compare.md shows two comparisons and what the numbers mean.
"""

from __future__ import annotations

import math
import os
import pickle
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bpm.compiler.errors import BpmError

from . import contract
from .bootstrap import sendable_model
from .compare_stats import aic, bic, likelihood_ratio, nested_pairs, p_text, paired_difference
from .data import SPLITS
from .fit import provenance
from .multistart import rebuild, run_start
from .observations import read_observations
from .options import FitOptions
from .paths import split_tensors
from .train import Joint, row_log_likelihoods

LOG2 = math.log(2.0)


def compare(models, data, options=None, nested=(), output=None, plots: bool = True,
            uncertainty: bool = False, **save) -> dict:  # fmt: skip
    """Fit every model of ``models`` (.bpm paths) to ``data`` on the same split with
    ``options`` (a :class:`~bpm.runtime.options.FitOptions` or a dict, as ``fit()`` takes)
    and compare them; the comparison as a JSON-ready dict (:func:`comparison`).
    ``nested``: declared ``(small, large)`` pairs of model names. With ``output``, each
    fit is saved to ``output/<model name>/`` (as ``bpm fit -o`` saves it, with Hessian
    standard errors when ``uncertainty``; ``save``: more keywords of
    :meth:`~bpm.runtime.result.FitResult.save`, such as ``gauge`` and ``figure_formats``)
    and the comparison to ``output/comparison.json``."""
    options = FitOptions.build(options)
    if options.mode in ("stream", "distributed") or options.processes > 1:
        raise BpmError("bpm compare fits every model to the data in memory, to score each "
                       "on the same test reads: no streamed or distributed fits")  # fmt: skip
    resolved = [contract.resolve_model(model) for model in models]
    names = [cls.name for cls, _, _ in resolved]
    _check_models(names, resolved, nested)
    modules = {name: cls() for name, (cls, _, _) in zip(names, resolved, strict=True)}
    check_names(options, modules)
    jobs = [model_options(options, module) for module in modules.values()]
    check_nested({name: learned_count(module, job.fix) for (name, module), job
                  in zip(modules.items(), jobs, strict=True)}, nested)  # fmt: skip
    first = resolved[0][0]
    dataset = read_observations(
        data, alphabet=first.alphabet, length=first.sequence_length, seed=options.seed,
        **options.data_options,
    )  # fmt: skip
    empty = [split for split, n in dataset.sizes().items() if n == 0]
    if empty:
        raise BpmError(f"bpm compare fits on training and validation reads and ranks on test "
                       f"reads; the split gives {dataset.sizes()}")  # fmt: skip
    if options.starts > 1 or options.bootstrap > 0 or options.identifiability:
        results = _fit_in_turn(models, names, dataset, jobs, options.quiet)
    else:
        results = _fit_at_once(models, names, resolved, dataset, jobs, options)
    for result, job in zip(results.values(), jobs, strict=True):
        result.data_path = str(data) if isinstance(data, (str, Path)) else ""
        result.provenance = provenance(data, job, "full")
    found = comparison(results, dataset, nested)
    if output is not None:
        _write(found, results, Path(output), options.quiet, dict(plots=plots, **save),
               uncertainty)  # fmt: skip
    return found


def model_options(options: FitOptions, module) -> FitOptions:
    """One model's options in a comparison: ``init`` and ``fix`` keep the names this
    model has (``get_params`` names; :func:`check_names` refuses those none has).

    >>> from bpm.compiler import load
    >>> job = model_options(FitOptions.build(fix=("G_I", "k_on")), load("models/lac.bpm")())
    >>> job.fix
    ('G_I',)
    """
    if not options.init and not options.fix:
        return options
    known = set(contract.layout(module))
    return options.replace(
        init={k: v for k, v in options.init.items() if k in known},
        fix=tuple(name for name in options.fix if name in known),
    )


def check_names(options: FitOptions, modules: dict) -> None:
    """Refuse an ``init`` or ``fix`` name that no model of the comparison has."""
    known = set().union(*(set(contract.layout(m)) for m in modules.values()))
    for what, given in (("init", options.init), ("fix", options.fix)):
        unknown = sorted(set(given) - known)
        if unknown:
            raise BpmError(f"{what} names {unknown}, parameters of none of the models "
                           f"({', '.join(modules)})")  # fmt: skip


def comparison(results: dict, dataset, nested=()) -> dict:
    """The comparison of fitted models (``{name: FitResult}``, all on ``dataset``):
    ``models`` (best first, each with its parameters, per-split log-likelihoods per
    read in bits, test I_var, AIC, BIC and its paired test difference from the best),
    ``nested`` (each pair's likelihood-ratio test) and ``best``."""
    rows = {}
    fixed = {name: held(result) for name, result in results.items()}
    for name, result in results.items():
        joint = Joint(result.module, result.measurement, result.output)
        rows[name] = {"result": result, "splits": {}}
        for split in SPLITS:
            x, obs = split_tensors(dataset, split, next(joint.parameters()).device)
            ll, weight = row_log_likelihoods(joint, x, obs)
            rows[name]["splits"][split] = (ll, float(weight.sum()))
    order = sorted(rows, key=lambda n: -_per_read(rows[n]["splits"]["test"]))
    best = order[0]
    entries = [_entry(name, rows[name], rows[best], fixed[name]) for name in order]
    by_name = {entry["model"]: entry for entry in entries}
    descriptions = {
        name: describe(results[name].module, results[name].output, fixed[name]) for name in rows
    }
    tests = []
    for small, large, how in nested_pairs(descriptions, nested):
        counts = {name: by_name[name]["learned_numbers"] for name in (small, large)}
        check_nested(counts, [(small, large)])
        df = counts[large] - counts[small]
        lrt = likelihood_ratio(
            by_name[small]["train_nll_nats"], by_name[large]["train_nll_nats"], df
        )
        tests.append({"nested": small, "in": large, "how": how, **lrt,
                      "delta_aic": by_name[small]["aic"] - by_name[large]["aic"],
                      "delta_bic": by_name[small]["bic"] - by_name[large]["bic"]})  # fmt: skip
    return {"best": best, "models": entries, "nested": tests, "sizes": dataset.sizes()}


def check_nested(counts: dict, pairs) -> None:
    """Refuse a nested pair ``(small, large)`` whose small model does not learn fewer
    numbers (``counts``: :func:`learned_count` by model name)."""
    for small, large in pairs:
        if counts[small] >= counts[large]:
            raise BpmError(
                f"--nested {small}:{large}: {small} learns {counts[small]} numbers and "
                f"{large} {counts[large]}; the nested model (first) must learn fewer"
            )


def held(result) -> tuple[str, ...]:
    """The names a fit held at their starting values (its options' ``fix``)."""
    return tuple((result.provenance or {}).get("options", {}).get("fix") or ())


def describe(module, output: str, fixed=()) -> dict:
    """What :func:`~bpm.runtime.compare_stats.nested_in` reads of a module: its learned
    names and shapes (less the ``fixed`` ones), its site windows, sequence and output."""
    slots = {name: slot for name, slot in contract.layout(module).items() if name not in fixed}
    sites = {
        name: (site["start"], site["stop"], site.get("kind"), bool(site.get("revcomp")))
        for name, site in contract.site_energies(module).items()
    }
    return {
        "learned": {name: slot.shape for name, slot in slots.items() if slot.learned},
        "sites": sites,
        "alphabet": getattr(type(module), "alphabet", None),
        "length": getattr(type(module), "sequence_length", None),
        "output": output,
    }


def learned_count(module, fixed=()) -> int:
    """The learned numbers of a module, less each additive matrix's gauge freedom (a
    shift at every position, absorbed by the offset: one per position with an offset,
    one fewer without) and less the ``fixed`` names (held by the fit's ``fix``);
    neighbour and pairwise tables are counted as stored."""
    slots = contract.layout(module)
    total = 0
    for slot in slots.values():
        if not slot.learned or slot.name in fixed:
            continue
        total += slot.size
        if slot.kind == "matrix" and slot.shape:
            offset = slots.get(f"{slot.site}.offset")
            free = offset is not None and offset.learned and offset.name not in fixed
            total -= slot.shape[0] if free else slot.shape[0] - 1
    return total


def table_text(found: dict) -> str:
    """The comparison as the text ``bpm compare`` prints: one line a model, best first,
    then one a nested pair."""
    head = (f"{'model':<22} {'params':>6} {'train':>8} {'val':>8} {'test':>8} {'I_var':>6} "
            f"{'test diff (bits/read)':>24} {'AIC':>10} {'BIC':>10}")  # fmt: skip
    lines = ["log-likelihood per read in bits; test diff: from the best, paired over "
             f"{found['sizes']['test']} test sequences (± 1 SE)", head]  # fmt: skip
    for m in found["models"]:
        diff = f"{m['test_diff_bits_per_read']:+.4f} ± {m['test_diff_se_bits_per_read']:.4f}"
        diff = "best" if m["model"] == found["best"] else diff
        lines.append(
            f"{m['model']:<22} {m['parameters']:>6} {m['train_ll_bits_per_read']:>8.4f} "
            f"{m['val_ll_bits_per_read']:>8.4f} {m['test_ll_bits_per_read']:>8.4f} "
            f"{m['test_I_var_bits']:>6.3f} {diff:>24} {m['aic']:>10.1f} {m['bic']:>10.1f}"
        )
    for t in found["nested"]:
        lines.append(
            f"nested ({t['how']}): {t['nested']} in {t['in']}: 2ΔNLL = {t['statistic']:.2f} "
            f"on training reads, df = {t['df']}, p {_p(t['p_value'])}; "
            f"ΔAIC = {t['delta_aic']:+.1f}, ΔBIC = {t['delta_bic']:+.1f} "
            f"({t['nested']} minus {t['in']})"
        )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- plumbing


def _p(p: float) -> str:
    text = p_text(p)
    return text if text.startswith("<") else f"= {text}"


def _per_read(split: tuple) -> float:
    ll, reads = split
    return float(ll.sum()) / reads if reads else -math.inf


def _entry(name: str, row: dict, best: dict, fixed=()) -> dict:
    result, splits = row["result"], row["splits"]
    learned = learned_count(result.module, fixed)
    k = learned + sum(p.numel() for p in result.measurement.parameters() if p.requires_grad)
    train_ll, train_reads = splits["training"]
    nll = -float(train_ll.sum())
    paired = paired_difference(splits["test"][0], best["splits"]["test"][0])
    test_reads = splits["test"][1]
    entry = {"model": name, "model_path": result.model_path, "learned_numbers": learned,
             "parameters": k, "train_nll_nats": nll, "train_reads": train_reads,
             "aic": aic(nll, k), "bic": bic(nll, k, train_reads),
             "test_I_var_bits": result.metrics["test"]["I_var_bits"],
             "test_diff_nats": paired["difference"], "test_diff_se_nats": paired["se"],
             "test_diff_se_unpaired_nats": paired["se_unpaired"],
             "test_diff_bits_per_read": paired["difference"] / test_reads / LOG2,
             "test_diff_se_bits_per_read": paired["se"] / test_reads / LOG2,
             "converged": bool(result.convergence.get("converged"))}  # fmt: skip
    for split, key in (("training", "train"), ("validation", "val"), ("test", "test")):
        entry[f"{key}_ll_bits_per_read"] = _per_read(splits[split]) / LOG2
    return entry


def _check_models(names, resolved, nested) -> None:
    if len(names) < 2:
        raise BpmError("bpm compare needs two or more models")
    if len(set(names)) < len(names):
        raise BpmError(f"two models have the same name ({names}); each gets a directory by name")
    reads = {(getattr(cls, "alphabet", None), getattr(cls, "sequence_length", None))
             for cls, _, _ in resolved}  # fmt: skip
    if len(reads) > 1:
        raise BpmError(f"the models read different sequences ({sorted(map(str, reads))}); "
                       "compare fits them to the same reads")  # fmt: skip
    for pair in nested:
        unknown = [n for n in pair if n not in names]
        if unknown or len(pair) != 2:
            raise BpmError(f"--nested {':'.join(pair)}: no model named {unknown} (models: {names})")


def _fit_at_once(models, names, resolved, dataset, jobs, options: FitOptions) -> dict:
    """Each model's fit in a fresh interpreter, as many at a time as there are CPUs, each
    with ``threads`` torch threads (1 by default): ``{name: FitResult}``, in order."""
    workers = max(1, min(len(models), os.cpu_count() or 1))
    if not options.quiet:
        print(f"fitting {len(models)} models, {workers} at a time", file=sys.stderr)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bpm-compare-") as tmp:
        folder = Path(tmp)
        shared = folder / "data.pkl"
        with open(shared, "wb") as handle:
            pickle.dump(dataset, handle)
        sent = []
        for i, (model, (_, source, _)) in enumerate(zip(models, resolved, strict=True)):
            (folder / str(i)).mkdir()
            sent.append((sendable_model(model, source, folder / str(i)), folder / str(i) / "fit"))
        with ThreadPoolExecutor(workers) as pool:
            futures = [
                pool.submit(run_start, model, shared, job.replace(quiet=True, mode="full"), stem)
                for (model, stem), job in zip(sent, jobs, strict=True)
            ]
            for name, future, (cls, source, path) in zip(names, futures, resolved, strict=True):
                try:
                    fitted = future.result()
                except BpmError as error:
                    message = error.diagnostics[0].message.replace("a start's fit", "the fit")
                    raise BpmError(f"fitting {name}: {message}") from None
                result = rebuild(cls, source, path, fitted, options.device)
                result.dataset = dataset
                results[name] = result
                if not options.quiet:
                    print(f"fitted {name}", file=sys.stderr)
    return results


def _fit_in_turn(models, names, dataset, jobs, quiet: bool) -> dict:
    """Each model fitted through :func:`bpm.runtime.fit.fit` in turn (its starts, bootstrap
    refits and profiles in parallel processes): ``{name: FitResult}``, in order."""
    from .fit import fit

    results = {}
    for model, name, job in zip(models, names, jobs, strict=True):
        if not quiet:
            print(f"fitting {name}", file=sys.stderr)
        try:
            results[name] = fit(model, dataset, job.replace(mode="full", quiet=True))
        except BpmError as error:
            raise BpmError(f"fitting {name}: {error.diagnostics[0].message}") from None
    return results


def _write(found: dict, results: dict, output: Path, quiet: bool, save: dict,
           uncertainty: bool) -> None:  # fmt: skip
    import json

    output.mkdir(parents=True, exist_ok=True)
    for name, result in results.items():
        if uncertainty:
            if not quiet:
                print(f"standard errors of {name} (Hessian of the likelihood)", file=sys.stderr)
            result.analyze_uncertainty()
        if not quiet:
            print(f"writing {output / name}/", file=sys.stderr)
        result.save(output / name, **save)
    (output / "comparison.json").write_text(json.dumps(found, indent=2, allow_nan=True) + "\n")
