"""Compile time of kinetic schemes up to 200 states (issue 16): figures, not a test.

For reversible chains, ladders (two rails joined by rungs), parallel paths and
complete graphs, this prints the states, the spanning trees (all states together),
whether the module sums trees or solves numerically (tree budget 2000), and the
seconds to count the trees, to derive the closed forms and to generate the module
text (``bpm compile``'s work after the check; importing torch is not counted).

    python benchmarks/compile_scaling.py                 # chains to 200 states, etc.
    python benchmarks/compile_scaling.py --largest 50    # a quicker run

Target: every scheme up to 200 states compiles in under 10 s.
"""

from __future__ import annotations

import argparse
import time

import torch  # noqa: F401  imported first, so its import time is not counted

from bpm.compiler import kinetic, pipeline


def chain(n: int) -> str:
    rows = [f"  s{i} <-> s{i + 1} : k, 2" for i in range(n - 1)]
    return _model(f"chain{n}", rows, f"s{n - 1}")


def ladder(rungs: int) -> str:
    rows = [f"  a{i} <-> b{i} : k, 2" for i in range(rungs)]
    for i in range(rungs - 1):
        rows += [f"  a{i} <-> a{i + 1} : k, 2", f"  b{i} <-> b{i + 1} : k, 2"]
    return _model(f"ladder{rungs}", rows, "a0")


def parallel(paths: int, length: int = 3) -> str:
    rows = []
    for p in range(paths):
        names = ["start", *(f"p{p}_{i}" for i in range(length)), "end"]
        rows += [f"  {u} <-> {v} : k, 2" for u, v in zip(names, names[1:], strict=False)]
    return _model(f"parallel{paths}", rows, "end")


def complete(n: int) -> str:
    rows = [f"  s{i} <-> s{j} : k, 2" for i in range(n) for j in range(i + 1, n)]
    return _model(f"complete{n}", rows, "s0")


def _model(name: str, rows: list[str], state: str) -> str:
    return "\n".join([f"model {name}", "param k > 0", "kinetic {", *rows, "}",
                      f"output t = P({state})", ""])  # fmt: skip


def measure(text: str) -> tuple[int, int, str, float, float, float]:
    model = pipeline.to_ir(text, "bench.bpm")
    t0 = time.perf_counter()
    total = sum(kinetic.count_all_trees(model).values())
    t1 = time.perf_counter()
    derivation = pipeline.closed_forms(model)
    t2 = time.perf_counter()
    pipeline.emit_from_derivation(model, "torch", "bench.bpm", derivation)
    t3 = time.perf_counter()
    path = "trees" if derivation is not None else "solve"
    return len(model.states), total, path, t1 - t0, t2 - t1, t3 - t2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--largest", type=int, default=200, help="most states of a chain")
    args = parser.parse_args()
    sizes = [n for n in (10, 50, 100, 150, 200) if n <= args.largest]
    schemes = [(f"chain {n}", chain(n)) for n in sizes]
    schemes += [(f"ladder {r}", ladder(r)) for r in (6, 20, 100) if 2 * r <= args.largest]
    schemes += [(f"parallel {p}", parallel(p)) for p in (8, 40) if 3 * p + 2 <= args.largest]
    schemes += [(f"complete {n}", complete(n)) for n in (6, 20, 40) if n <= args.largest]
    print(f"{'scheme':<14}{'states':>7}{'trees':>12}{'path':>7}"
          f"{'count s':>9}{'derive s':>10}{'codegen s':>11}{'total s':>9}")  # fmt: skip
    for label, text in schemes:
        n, total, path, count, derive, gen = measure(text)
        trees = f"{total:.3g}" if total >= 1e6 else str(total)
        print(f"{label:<14}{n:>7}{trees:>12}{path:>7}"
              f"{count:>9.2f}{derive:>10.2f}{gen:>11.2f}{count + derive + gen:>9.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
