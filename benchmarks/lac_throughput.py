"""Forward+backward throughput of the generated lac module against a one-hot reference.

Both compute t = t_sat (e^-G_R + e^-(G_C+G_R+G_I)) / (1 + e^-G_C + e^-G_R + e^-(G_C+G_R+G_I))
for batches of 50,000 random 75-bp sequences on 2 CPU threads, with the same
parameter values, and take the gradient of sum(t) with respect to every parameter.

The reference is the plain way to write it: one-hot [N, L, 4] times the energy
matrices. It is timed twice: building the one-hot from the same integer codes
the generated module reads (the same input), and with the one-hot built once
outside the timed loop (its best case). Run: python benchmarks/lac_throughput.py

OpenMP threads wait passively by default here (OMP_WAIT_POLICY=PASSIVE, set before
torch loads; set it to ACTIVE to override): on a shared 2-core machine, spinning
threads that lose their core stretch every operation to a scheduler tick and the
timings of both implementations become meaningless.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from bpm.compiler.loader import load  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class OneHotLac(torch.nn.Module):
    """The lac formula written directly: one-hot sequences times energy matrices."""

    def __init__(self, params: dict[str, torch.Tensor]):
        super().__init__()
        self.M_C = torch.nn.Parameter(params["G_C"].clone())
        self.M_R = torch.nn.Parameter(params["G_R"].clone())
        self.c_C = torch.nn.Parameter(params["G_C.offset"].clone())
        self.c_R = torch.nn.Parameter(params["G_R.offset"].clone())
        self.G_I = torch.nn.Parameter(params["G_I"].clone())
        self.log_t_sat = torch.nn.Parameter(torch.log(params["t_sat"]))

    def forward(self, onehot: torch.Tensor) -> torch.Tensor:
        G_C = (onehot[:, 1:27] * self.M_C).sum(dim=(1, 2)) + self.c_C
        G_R = (onehot[:, 34:75] * self.M_R).sum(dim=(1, 2)) + self.c_R
        b_C, b_R, b_CR = torch.exp(-G_C), torch.exp(-G_R), torch.exp(-(G_C + G_R + self.G_I))
        return torch.exp(self.log_t_sat) * (b_R + b_CR) / (1 + b_C + b_R + b_CR)


def timed(steps: dict, repeats: int) -> dict[str, float]:
    """Median seconds per call of each step, after two warm-up calls each.

    The steps take turns, round after round, so that a busy machine slows them alike.
    """
    for step in steps.values():
        step()
        step()
    times: dict[str, list[float]] = {label: [] for label in steps}
    for _ in range(repeats):
        for label, step in steps.items():
            start = time.perf_counter()
            step()
            times[label].append(time.perf_counter() - start)
    return {label: statistics.median(t) for label, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="sequences per batch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    lac = load(ROOT / "models" / "lac.bpm")()
    lac.set_params(
        {
            "G_C": 0.5 * torch.randn(26, 4),
            "G_R": 0.5 * torch.randn(41, 4),
            "G_C.offset": torch.tensor(-1.0),
            "G_R.offset": torch.tensor(2.0),
            "G_I": torch.tensor(-2.5),
            "t_sat": torch.tensor(3.0),
        }
    )
    reference = OneHotLac(lac.get_params())
    x = torch.randint(0, 4, (args.n, 75))
    onehot = torch.nn.functional.one_hot(x, 4).float()
    torch.testing.assert_close(lac(x), reference(onehot), rtol=1e-5, atol=1e-6)

    def generated_step():
        lac.zero_grad(set_to_none=True)
        lac(x).sum().backward()

    def reference_step():
        reference.zero_grad(set_to_none=True)
        reference(torch.nn.functional.one_hot(x, 4).float()).sum().backward()

    def reference_prebuilt_step():
        reference.zero_grad(set_to_none=True)
        reference(onehot).sum().backward()

    steps = {
        "generated module (integer codes, gathers)": generated_step,
        "one-hot reference, one-hot built per step": reference_step,
        "one-hot reference, one-hot prebuilt": reference_prebuilt_step,
    }
    rows = list(timed(steps, args.repeats).items())
    threads = torch.get_num_threads()
    print(f"lac forward+backward, N = {args.n}, {threads} threads, torch {torch.__version__}")
    loadavg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"  machine load average {loadavg} on {os.cpu_count()} cores")
    for label, seconds in rows:
        print(
            f"  {label:<44} {args.n / seconds:>12,.0f} sequences/s  ({1e3 * seconds:.1f} ms/batch)"
        )
    base = rows[0][1]
    print(f"  speed-up over the reference (same input):     {rows[1][1] / base:.2f}x")
    print(f"  speed-up over the reference (prebuilt one-hot): {rows[2][1] / base:.2f}x")


if __name__ == "__main__":
    main()
