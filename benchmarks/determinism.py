"""Issue 14's flakiness check: the fixed class graded N times by one grader tree with the same
seed; every submission must get the same score, status and outcomes every time.

    python benchmarks/determinism.py [--tree GRADER_TREE] [--assignment fastapi-db-auth] \\
        [--runs 5] [--seed 0] [--jobs 2] [--limit N | --only NAME ...] [--work DIR] \\
        [--results FILE]

Each run is `PYTHONPATH=<tree> python -m grader.cli batch CLASS --jobs J --seed S` into a fresh
output folder (the class from bench_class.py, materialized once). Prints the number of
submissions and runs, and for every submission that was not identical in all runs its scores and
each flapping outcome (pass/fail per run). Exit 1 when any flapped.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_class import ROOT, commit, interrupt_on_sigterm, machine, run_batch, write_class
from compare_grades import journal, outcomes


def flapping(outs: list[Path]) -> tuple[int, list[str]]:
    """The number of submissions, and what differs between the runs, student by student."""
    runs = [journal(out) for out in outs]
    students = sorted(set().union(*runs))
    lines = []
    for student in students:
        entries = [run.get(student) for run in runs]
        if any(e is None for e in entries):
            lines.append(
                f"{student}: missing in run(s) {[i + 1 for i, e in enumerate(entries) if e is None]}"
            )
            continue
        grades = [(e["status"], e["score"]) for e in entries if e]
        results = [outcomes(out, e) for out, e in zip(outs, entries, strict=True) if e]
        keys = sorted(set().union(*results))
        moved = [k for k in keys if len({r.get(k) for r in results}) > 1]
        if len(set(grades)) == 1 and not moved:
            continue
        lines.append(f"{student}: " + ", ".join(f"{s} {p}" for s, p in grades))
        for item, name in moved:
            flips = "".join(
                {True: "P", False: "F", None: "-"}[r.get((item, name))] for r in results
            )
            lines.append(f"    {item}: {name[:90]}: {flips}")
    return len(students), lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=ROOT, help="the grader source tree")
    parser.add_argument("--assignment", default="fastapi-db-auth")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="only the class's first N")
    parser.add_argument("--only", nargs="+", default=None, help="only these class members")
    parser.add_argument("--work", type=Path, default=None, help="class and batch outputs")
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args()
    interrupt_on_sigterm()
    tree = args.tree.resolve()
    work = (args.work or Path(tempfile.mkdtemp(prefix="determinism-"))).resolve()
    names = write_class(args.assignment, work / "class", args.only, args.limit)
    header = [
        f"# {' '.join(shlex.quote(a) for a in sys.argv)}",
        f"# {machine()} (at the start); grader {tree} at {commit(tree)}",
        f"# class: {len(names)} submissions of {args.assignment}; seed {args.seed}, "
        f"--jobs {args.jobs}; work folder {work}",
    ]
    print("\n".join(header), flush=True)
    outs = []
    for n in range(1, args.runs + 1):
        outs.append(work / f"run-{n}")
        wall = run_batch(
            tree, work / "class", args.assignment, outs[-1], jobs=args.jobs, seed=args.seed
        )
        print(f"run {n}/{args.runs}: {wall:.0f} s", flush=True)
    total, lines = flapping(outs)
    flaky = sum(1 for line in lines if not line.startswith(" "))
    body = [
        *lines,
        f"{total} submissions, {args.runs} runs: {total - flaky} identical in every run "
        f"(score, status and every outcome), {flaky} not",
        f"# {machine()} (at the end)",
    ]
    print("\n".join(body))
    if args.results:
        args.results.write_text("\n".join(header + body) + "\n")
    return 1 if flaky else 0


if __name__ == "__main__":
    raise SystemExit(main())
