"""How kinetic models scale: spanning trees, compile time, and module throughput.

For three families of schemes (complete graphs, reversible chains, reversible rings)
of 2 to 8 states, this prints the number of spanning trees (all states together), the
time to derive and generate the module, and the throughput of the generated module's
``forward`` on 50,000 sequences, for the King-Altman tree path and for the
linear-solve path (``tree_budget=0``), and where the solve path starts to win.

    python benchmarks/kinetic_scaling.py              # the full table (a few minutes)
    python benchmarks/kinetic_scaling.py --max-states 4 --sequences 2000   # a smoke run

Every scheme reads one 20-bp sequence: the first transition's rate is
``k0 * exp(-G)`` with ``G = matrix(x[0:10])``; every other transition has its own
rate constant.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
import types

import torch

from bpm.compiler import codegen, kinetic, pipeline

FAMILIES = ("complete", "chain", "ring")


def edges(family: str, n: int) -> list[tuple[int, int]]:
    """The transitions of one scheme, as (source, target) state numbers."""
    if family == "complete":
        return [(u, v) for u in range(n) for v in range(n) if u != v]
    if family == "chain":
        return [e for i in range(n - 1) for e in ((i, i + 1), (i + 1, i))]
    if family == "ring":
        if n < 3:
            return edges("chain", n)
        return [e for i in range(n) for e in ((i, (i + 1) % n), ((i + 1) % n, i))]
    raise ValueError(family)


def model_text(family: str, n: int) -> str:
    """A .bpm file for one scheme."""
    pairs = edges(family, n)
    lines = [f"model {family}{n}", "sequence x: dna[20]", "energy G = matrix(x[0:10])"]
    rng = random.Random(n)
    lines += [f"param k{i} > 0 init {rng.uniform(0.5, 2.0):.3f}" for i in range(len(pairs))]
    lines.append("kinetic {")
    for i, (u, v) in enumerate(pairs):
        rate = f"k{i} * exp(-G)" if i == 0 else f"k{i}"
        lines.append(f"    s{u} -> s{v} : {rate}")
    lines += ["}", f"output t = P(s{n - 1})", ""]
    return "\n".join(lines)


def build(text: str, name: str, tree_budget: int | None) -> tuple[type, float]:
    """Derive, generate and import the module; returns its class and the seconds it took."""
    start = time.perf_counter()
    model = pipeline.to_ir(text, name)
    trees = kinetic.within_budget(model, tree_budget)
    derivation = kinetic.derive(model, budget=tree_budget) if trees else None
    source = codegen.generate(model, derivation, name)
    module = types.ModuleType(f"bench_{name}_{tree_budget}")
    sys.modules[module.__name__] = module
    exec(compile(source, module.__name__, "exec"), module.__dict__)  # noqa: S102
    return module.Model, time.perf_counter() - start


def best_times(modules: list[torch.nn.Module], x: torch.Tensor, rounds: int) -> list[float]:
    """The best ``forward`` time of each module over ``rounds``, taking turns (fair under load)."""
    best = [float("inf")] * len(modules)
    with torch.no_grad():
        for module in modules:
            module(x)  # warm-up
        for _ in range(rounds):
            for i, module in enumerate(modules):
                start = time.perf_counter()
                module(x)
                best[i] = min(best[i], time.perf_counter() - start)
    return best


def run(max_states: int, sequences: int, max_trees: int, rounds: int = 7) -> list[dict]:
    rng = random.Random(0)
    seqs = ["".join(rng.choice("ACGT") for _ in range(20)) for _ in range(sequences)]
    rows = []
    for family in FAMILIES:
        for n in range(2, max_states + 1):
            if family == "ring" and n < 3:
                continue
            text = model_text(family, n)
            name = f"{family}{n}"
            model = pipeline.to_ir(text, name)
            total = kinetic.total_trees(model)
            row = {"family": family, "n": n, "transitions": len(model.transitions), "trees": total}
            solve_cls, row["solve_compile_s"] = build(text, name, tree_budget=0)
            modules = [solve_cls()]
            x = modules[0].encode(seqs)
            if total <= max_trees:
                tree_cls, row["tree_compile_s"] = build(text, name, tree_budget=math.inf)
                modules.append(tree_cls())
            times = best_times(modules, x, rounds)
            row["solve_seq_per_s"] = x.shape[0] / times[0]
            if len(modules) == 2:
                row["tree_seq_per_s"] = x.shape[0] / times[1]
                with torch.no_grad():
                    row["max_abs_diff"] = float((modules[1](x) - modules[0](x)).abs().max())
            rows.append(row)
            print(_line(row), file=sys.stderr, flush=True)
    return rows


def _fmt(row: dict, key: str, spec: str) -> str:
    return format(row[key], spec) if key in row else "—"


def _line(row: dict) -> str:
    return (
        f"| {row['family']} | {row['n']} | {row['transitions']} | {row['trees']} "
        f"| {_fmt(row, 'tree_compile_s', '.2f')} | {_fmt(row, 'solve_compile_s', '.2f')} "
        f"| {_fmt(row, 'tree_seq_per_s', ',.0f')} | {_fmt(row, 'solve_seq_per_s', ',.0f')} "
        f"| {_fmt(row, 'max_abs_diff', '.1e')} |"
    )


def table(rows: list[dict]) -> str:
    head = (
        "| family | states | transitions | trees | tree compile (s) | solve compile (s) "
        "| tree seq/s | solve seq/s | max abs diff |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    return "\n".join([head, *(_line(r) for r in rows)])


def crossover(rows: list[dict]) -> str:
    """Per family, the size from which the solve path is faster at every larger size too.

    Where the tree path was skipped (too many trees), the solve path counts as faster.
    """
    lines = []
    for family in FAMILIES:
        mine = [r for r in rows if r["family"] == family]
        wins = [r["solve_seq_per_s"] > r.get("tree_seq_per_s", 0.0) for r in mine]
        start = next((i for i in range(len(mine)) if all(wins[i:])), None)
        if start is None:
            lines.append(f"- {family}: the tree path is faster at the largest size measured")
        else:
            r = mine[start]
            lines.append(
                f"- {family}: the solve path is faster from {r['n']} states ({r['trees']} trees) on"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-states", type=int, default=8)
    parser.add_argument("--sequences", type=int, default=50_000)
    parser.add_argument(
        "--max-trees", type=int, default=10_000, help="skip the tree path above this many trees"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: stable timings on a busy machine)"
    )
    parser.add_argument("--rounds", type=int, default=7, help="timings per module (best is kept)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = run(args.max_states, args.sequences, args.max_trees, args.rounds)
    print(table(rows))
    print()
    print(crossover(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
