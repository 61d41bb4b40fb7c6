"""The README's commands: the first two are `make demo` and `make test`, every output goes
under results/, and every file a command reads exists or is written by a line above it."""

from __future__ import annotations

import shlex
from pathlib import Path

from bpm.cli.main import build_parser

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def commands() -> list[list[str]]:
    block = README.split("## Using it", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    lines = [line.split("  #", 1)[0].strip() for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("bpm ")]


def test_the_first_commands_are_make_demo_and_make_test():
    block = README.split("```", 2)[1]
    assert [line for line in block.splitlines()[1:] if line.strip()][:2] == [
        "make demo",
        "make test",
    ]


def test_every_command_parses_writes_under_results_and_reads_what_exists():
    parser = build_parser()
    written = set()
    found = commands()
    assert len(found) >= 10
    for argv in found:
        args = parser.parse_args(argv)  # every flag as written exists
        target = getattr(args, "report", None) or getattr(args, "output", None)
        if argv[0] in ("compile", "graph", "fit", "simulate") and "-o" in argv:
            out = argv[argv.index("-o") + 1]
            assert out.startswith("results/"), argv
        reads = [a for a in argv[1:] if "/" in a and a != target and not a.startswith("-")]
        for path in reads:
            if "*" in path:
                continue
            stem = path.removesuffix(".truth.json")
            assert (
                (ROOT / path).exists()
                or path in written
                or any(w.startswith(stem) for w in written)
            ), f"bpm {shlex.join(argv)} reads {path}, which no line above writes"
        if "-o" in argv:
            written.add(argv[argv.index("-o") + 1])
