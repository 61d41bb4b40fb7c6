"""Where the default lac fit spends its wall time, and how fast the generated modules'
passes are against plain one-hot PyTorch references run in the same process.

    python benchmarks/lac_speed.py                  # 3 default fits, then the passes
    python benchmarks/lac_speed.py --fits 0         # the passes only
    python benchmarks/lac_speed.py --passes 0       # the fits only

The fits: ``bpm fit models/lac.bpm data/lac_sortseq_kinney2010.csv.gz -o DIR`` (the
default command, progress on) in child processes, one after another. Each phase's
wall time comes from the fit itself (summary.json's ``phase_seconds``: compile,
setup, read, encode, start, adam, polish, evaluating, and uncertainty or
identifiability when their flags are given) and from the arrival times of the phase
lines the command prints on stderr (writing, plotting, report); start-up is what
comes before the fit's first phase (interpreter, imports, argument checks, the
model's compile). The child's own peak RSS and CPU seconds come from ``wait4``.
Medians over the fits.

The passes: forward and backward (the gradient of ``sum(t)`` with respect to every
parameter) of the generated lac, open_complex and GB1 modules on random codes, in
float32 (the Adam stage) and float64 (the L-BFGS polish), against the same formula
written plainly as one-hot sequences times energy matrices (the one-hot built from the
codes at every pass, as a fit from codes must, and prebuilt, its best case; each energy
one matrix product of the flattened one-hot and matrix, or the product summed), with
the same parameter values (checked to agree); the ratio columns compare with the faster
reference of each kind. lac and open_complex at 30,516 rows (the lac
training split, one full-batch step), GB1 at 4,096 (one of its minibatches) and 30,516.
``lac joint`` adds the sort-seq measurement process and the likelihood: one step of the
fit, on random codes and reads and on the lac training split itself. The
implementations take turns, round after round, so a busy machine slows them alike;
compare the ratios, not the times, across runs.

OpenMP threads wait passively (OMP_WAIT_POLICY=PASSIVE, set before torch loads): on a
shared machine spinning threads that lose their core stretch every operation.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "lac.bpm"
DATA = ROOT / "data" / "lac_sortseq_kinney2010.csv.gz"
#: Rows of the lac data's training split: one full-batch step.
LAC_ROWS = 30_516
#: The in-fit phases, in the order they run (summary.json's phase_seconds).
FIT_PHASES = ("compile", "setup", "read", "encode", "start", "adam", "polish", "evaluating",
              "bootstrap", "identifiability", "uncertainty")  # fmt: skip
#: The phases after the fit, by the stderr line that starts each, and the line that ends
#: the last.
LINE_PHASES = (("writing", "writing:"), ("plotting", "plotting:"), ("report", "report:"))
END_LINE = "wrote "


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg()) + f" ({os.cpu_count()} cores)"


# ---------------------------------------------------------------------------- the fits


def timed_fit(out: Path, flags: list[str]) -> dict:
    """One default fit in a child process: every stderr line with its arrival time
    (seconds since launch), the child's wall time, CPU seconds, peak RSS, summary.json."""
    command = [sys.executable, "-m", "bpm.cli", "fit", str(MODEL), str(DATA), "-o", str(out)]
    start = time.perf_counter()
    child = subprocess.Popen(command + flags, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in child.stderr:
        lines.append((time.perf_counter() - start, line.split("\r")[-1].strip()))
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        text = "\n".join(line for _, line in lines)
        raise SystemExit(f"bpm fit failed ({child.returncode}):\n{text}")
    summary = json.loads((out / "summary.json").read_text())
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_MB": usage.ru_maxrss / 1024,
        "lines": lines,
        "summary": summary,
    }


def breakdown(found: dict) -> dict[str, float]:
    """Seconds by phase of one fit, start-up to exit, adding up to its wall time."""
    inside = found["summary"].get("phase_seconds", {})
    at = {}
    for seconds, line in found["lines"]:
        for name, start in (*LINE_PHASES, ("end", END_LINE), ("measured", "measurement:")):
            if line.startswith(start) and name not in at:
                at[name] = seconds
    first = at.get("measured", 0.0) - sum(inside.get(p, 0.0) for p in ("compile", "setup", "read"))
    rows = {"start-up (interpreter, imports, checks, compile)": first}
    rows.update({p: inside[p] for p in FIT_PHASES if p in inside})
    marks = [at.get(name) for name, _ in LINE_PHASES] + [at.get("end")]
    for (name, _), begin, end in zip(LINE_PHASES, marks, marks[1:], strict=False):
        if begin is not None and end is not None:
            rows[name] = end - begin
    rows["exit"] = found["wall"] - at["end"] if "end" in at else 0.0
    rows["unaccounted"] = found["wall"] - sum(rows.values())
    return rows


def run_fits(count: int, flags: list[str]) -> None:
    print(f"## default fit: bpm fit models/lac.bpm {DATA.relative_to(ROOT)} -o DIR "
          f"{' '.join(flags)}".rstrip())  # fmt: skip
    print(f"load average at start {load_average()}")
    runs = []
    with tempfile.TemporaryDirectory(prefix="bpm_lac_speed_") as tmp:
        for k in range(count):
            runs.append(timed_fit(Path(tmp) / f"fit{k}", flags))
            print(f"  fit {k + 1}: {runs[-1]['wall']:.2f} s wall, load {load_average()}",
                  flush=True)  # fmt: skip
    tables = [breakdown(r) for r in runs]
    names = list(dict.fromkeys(name for t in tables for name in t))
    print("\n| phase | median s | share |\n|---|---|---|")
    wall = statistics.median(r["wall"] for r in runs)
    for name in names:
        seconds = statistics.median(t.get(name, 0.0) for t in tables)
        print(f"| {name} | {seconds:.2f} | {seconds / wall:.0%} |")
    print(f"| **wall** | **{wall:.2f}** | |")
    cpu = statistics.median(r["cpu"] for r in runs)
    peak = statistics.median(r["peak_MB"] for r in runs)
    test = runs[0]["summary"]["metrics"]["test"]["I_var_bits"]
    steps = [s["iterations"] for s in runs[0]["summary"]["stages"]]
    walls = ", ".join(f"{r['wall']:.2f}" for r in runs)
    print(f"\nwalls {walls} s; median CPU {cpu:.2f} s; "
          f"median peak RSS {peak:.0f} MB; stage iterations {steps}; test I_var {test:.4f} "
          f"bits; load average at end {load_average()}\n")  # fmt: skip


# -------------------------------------------------------------------------- the passes


def references():
    """The one-hot reference modules, by model name: ``Reference(params, form)`` with
    ``form`` ``"matmul"`` (each energy one matrix-vector product of the flattened one-hot
    and the flattened matrix) or ``"mulsum"`` (one-hot times matrix, summed)."""
    import torch

    def parameter(value):
        return torch.nn.Parameter(value.detach().clone())

    class Reference(torch.nn.Module):
        def __init__(self, form):
            super().__init__()
            self.form = form

        def energy(self, onehot, matrix, offset, start, stop):
            part = onehot[:, start:stop]
            if self.form == "matmul":
                return part.reshape(len(part), -1) @ matrix.reshape(-1) + offset
            return (part * matrix).sum(dim=(1, 2)) + offset

    class OneHotLac(Reference):
        """t = t_sat (w_R + w_CR) / (1 + w_C + w_R + w_CR), w = exp(-G)."""

        def __init__(self, p, form):
            super().__init__(form)
            self.M_C, self.c_C = parameter(p["G_C"]), parameter(p["G_C.offset"])
            self.M_R, self.c_R = parameter(p["G_R"]), parameter(p["G_R.offset"])
            self.G_I, self.log_t_sat = parameter(p["G_I"]), parameter(p["t_sat"].log())

        def forward(self, onehot):
            G_C = self.energy(onehot, self.M_C, self.c_C, 1, 27)
            G_R = self.energy(onehot, self.M_R, self.c_R, 34, 75)
            w_C, w_R, w_CR = torch.exp(-G_C), torch.exp(-G_R), torch.exp(-(G_C + G_R + self.G_I))
            return torch.exp(self.log_t_sat) * (w_R + w_CR) / (1 + w_C + w_R + w_CR)

    class OneHotOpenComplex(Reference):
        """King-Altman for unbound -> closed -> open -> unbound with closed -> unbound:
        t = k_init a c / (k_init (b + c) + a (c + k_init)), a = k_on exp(-G_R)."""

        def __init__(self, p, form):
            super().__init__(form)
            self.M_R, self.c_R = parameter(p["G_R"]), parameter(p["G_R.offset"])
            for name in ("k_on", "k_off", "k_open", "k_init"):
                setattr(self, f"log_{name}", parameter(p[name].log()))

        def forward(self, onehot):
            a = torch.exp(self.log_k_on - self.energy(onehot, self.M_R, self.c_R, 34, 75))
            b, c, d = self.log_k_off.exp(), self.log_k_open.exp(), self.log_k_init.exp()
            return d * a * c / (d * (b + c) + a * (c + d))

    class OneHotGB1(Reference):
        """t = P(bound) = w_FB / (1 + w_F + w_FB), w = exp(-G)."""

        def __init__(self, p, form):
            super().__init__(form)
            self.M_F, self.c_F = parameter(p["G_F"]), parameter(p["G_F.offset"])
            self.M_B, self.c_B = parameter(p["G_B"]), parameter(p["G_B.offset"])

        def forward(self, onehot):
            G_F = self.energy(onehot, self.M_F, self.c_F, 0, 55)
            G_FB = G_F + self.energy(onehot, self.M_B, self.c_B, 0, 55)
            return torch.exp(-G_FB) / (1 + torch.exp(-G_F) + torch.exp(-G_FB))

    return {"lac": OneHotLac, "open_complex": OneHotOpenComplex, "gb1": OneHotGB1}


def random_params(module, generator) -> dict:
    """Moderate random values for every parameter: tables N(0, 0.3^2), offsets and scalar
    energies near 0, positive parameters near 1."""
    import torch

    values = {}
    for name, value in module.get_params().items():
        slot = module.parameter_layout[name]
        noise = torch.randn(value.shape, generator=generator, dtype=value.dtype)
        if slot["kind"] == "matrix":
            values[name] = 0.3 * noise
        elif slot["transform"] == "lower":
            values[name] = slot["bound"] + torch.exp(0.3 * noise)
        else:
            values[name] = 0.5 * noise
    return values


def median_times(steps: dict, repeats: int) -> dict[str, float]:
    """Median seconds per call of each step, taking turns: ``lac_throughput.timed``
    (imported here, as it loads torch, which the fits' timings must not pay for)."""
    from lac_throughput import timed

    return timed(steps, repeats)


def batch_layout():
    """How a fit lays out its batches (:func:`bpm.runtime.sources.column_major`), or None
    where this bpm passes them as they are."""
    try:
        from bpm.runtime.sources import column_major
    except ImportError:
        return None
    return column_major


def layouts(x):
    """The codes as ``encode`` gives them (row after row), and as a fit's batch."""
    laid = batch_layout()
    return {"codes": x} if laid is None else {"codes": x, "codes as a fit's batch": laid(x)}


def module_passes(name: str, rows: int, dtype, repeats: int) -> dict[str, float]:
    """Seconds per pass of the generated module and of its references, by label."""
    import torch
    import torch.nn.functional as F

    from bpm.compiler.loader import load

    generator = torch.Generator().manual_seed(0)
    generated = load(ROOT / "models" / f"{name}.bpm")()
    generated.set_params(random_params(generated, generator))
    generated.to(dtype).train()
    letters = len(generated.alphabet)
    x = torch.randint(0, letters, (rows, generated.sequence_length), generator=generator)
    onehot = F.one_hot(x, letters).to(dtype)

    def step(module, make):
        def run():
            module.zero_grad(set_to_none=True)
            module(make()).sum().backward()

        return run

    steps = {}
    for label, codes in layouts(x).items():
        steps[f"generated, {label}"] = step(generated, lambda codes=codes: codes)
    for form in ("matmul", "mulsum"):
        reference = references()[name](generated.get_params(), form).to(dtype)
        torch.testing.assert_close(generated(x), reference(onehot), rtol=1e-4, atol=1e-6)
        built = step(reference, lambda: F.one_hot(x, letters).to(dtype))
        steps[f"one-hot {form}, built per pass"] = built
        steps[f"one-hot {form}, prebuilt"] = step(reference, lambda: onehot)
    return median_times(steps, repeats)


def joint_passes(dtype, repeats: int) -> list[tuple[str, float]]:
    """One step of the lac fit: the module, the sort-seq measurement process and the
    likelihood, forward and backward, on random codes and reads and on the lac data's
    own training split (mutants of one wild type, whose letters repeat at every position:
    the backward's scatter then adds into one entry of each table row after another)."""
    import torch

    from bpm.compiler.loader import load
    from bpm.runtime.measurement import OrdinalMeasurement
    from bpm.runtime.observations import read_observations
    from bpm.runtime.train import Joint

    generator = torch.Generator().manual_seed(1)
    module = load(MODEL)()
    module.set_params(random_params(module, generator))
    joint = Joint(module, OrdinalMeasurement(10, hidden=2), "t").to(dtype).train()
    x = torch.randint(0, 4, (LAC_ROWS, 75), generator=generator)
    counts = torch.poisson(torch.full((LAC_ROWS, 10), 0.3), generator=generator)
    train = read_observations(DATA, alphabet="ACGT", length=75, seed=0).subset("training")
    real_x = torch.from_numpy(train.codes.astype("int64"))
    real_counts = torch.from_numpy(train.counts.astype("float32"))

    def step(codes, reads):
        def run():
            joint.zero_grad(set_to_none=True)
            (-joint(codes, reads).sum()).backward()

        return run

    steps = {}
    for data, (codes, reads) in {"random": (x, counts), "lac reads": (real_x, real_counts)}.items():
        reads = reads.to(dtype)
        steps[f"lac joint, {data}, codes"] = step(codes, reads)
        laid = batch_layout()
        if laid is not None:
            steps[f"lac joint, {data}, as a fit's batch"] = step(laid(codes), laid(reads))
    return list(median_times(steps, repeats).items())


def run_passes(repeats: int, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    print(f"## forward+backward per pass, {threads} thread(s), torch {torch.__version__}")
    print(f"load average at start {load_average()}\n")
    print("| module | rows | dtype | implementation | ms / pass | µs / 1000 seq | "
          "best one-hot built per pass / this | best one-hot prebuilt / this |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    cases = [("lac", LAC_ROWS), ("open_complex", LAC_ROWS), ("gb1", 4096), ("gb1", LAC_ROWS)]
    for dtype in (torch.float32, torch.float64):
        for name, rows in cases:
            found = module_passes(name, rows, dtype, repeats)
            built = min(v for k, v in found.items() if k.endswith("built per pass"))
            prebuilt = min(v for k, v in found.items() if k.endswith("prebuilt"))
            for label, seconds in found.items():
                print(f"| {name} | {rows:,} | {str(dtype)[6:]} | {label} | {1e3 * seconds:.2f} | "
                      f"{1e6 * seconds / rows * 1000:.1f} | {built / seconds:.2f}x | "
                      f"{prebuilt / seconds:.2f}x |", flush=True)  # fmt: skip
        for label, seconds in joint_passes(dtype, repeats):
            print(f"| lac | {LAC_ROWS:,} | {str(dtype)[6:]} | {label} | {1e3 * seconds:.2f} | "
                  f"{1e6 * seconds / LAC_ROWS * 1000:.1f} | | |", flush=True)  # fmt: skip
    print(f"\nload average at end {load_average()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=3, help="default fits to time (0: none)")
    parser.add_argument("--passes", type=int, default=15, help="timed rounds (0: none)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the passes")
    parser.add_argument("flags", nargs="*", help="extra bpm fit flags, after --")
    args = parser.parse_args()
    if args.fits > 0:
        run_fits(args.fits, args.flags)
    if args.passes > 0:
        run_passes(args.passes, args.threads)


if __name__ == "__main__":
    main()
