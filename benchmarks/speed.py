"""Issue 14's before/after benchmark: the same fixed class graded by two grader source trees with
the same seed, side by side in one run.

    python benchmarks/speed.py --before OLD_TREE --after NEW_TREE \\
        [--assignment fastapi-db-auth] [--jobs 1 2] [--repeat 1] [--seed 0] \\
        [--limit N | --only reference mutant-... ...] [--work DIR] [--results FILE] [--no-warmup]

Each tree runs as `PYTHONPATH=<tree> python -m grader.cli batch CLASS --jobs J --seed S` (a git
checkout or worktree of this repository, e.g. `git worktree add /tmp/before <commit>`). The class
(bench_class.py: reference, starter, examples, every mutant and correct variant) is materialized
once from this script's tree, so both sides grade the very same files.

--jobs 1 measures single-grade latency, --jobs 2 throughput. An untimed warm-up batch per tree
(--jobs 2) fills Docker's layer cache first, unless --no-warmup (the cache is known warm).
Noise: the two sides alternate batch by batch, the order flipping every repetition (before,
after; then after, before; ...), so a noisy minute hits both. Printed and written to the results
file (default benchmarks/RESULTS-speed-<assignment>.txt): per-phase medians over all the grades
of a side, the median grade, submissions per hour (the batch command's wall time, median over
repetitions), the after/before ratios (also of each repetition's pair of batches), and every
score or outcome that differs between the two sides' batches of the same repetition. Exit 1 when
any differs.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_class import ROOT, commit, interrupt_on_sigterm, machine, run_batch, write_class
from compare_grades import compare, journal
from phases import Phases, pooled, read

SIDES = ("before", "after")


@dataclass
class Batch:
    out: Path
    wall: float  # the batch command's seconds
    submissions: int  # journal entries: every submission the batch finished, graded or not
    phases: Phases

    @property
    def per_hour(self) -> float:
        return self.submissions * 3600 / self.wall


def ratio(after: float, before: float) -> str:
    return f"{after / before:.2f}" if before else "-"


def report(jobs: int, runs: dict[str, list[Batch]]) -> tuple[list[str], bool]:
    """The table of one --jobs value, and whether both sides graded alike."""
    sides = {side: pooled([b.phases for b in runs[side]]) for side in SIDES}
    medians = {side: sides[side].medians() for side in SIDES}
    rate = {side: statistics.median(b.per_hour for b in runs[side]) for side in SIDES}
    grades = {side: sides[side].grades for side in SIDES}
    lines = [
        f"--jobs {jobs}: {len(runs['before'])} batch(es) per side; "
        f"grades: before {grades['before']}, after {grades['after']}",
        f"  {'phase (median s)':26}{'before':>9}{'after':>9}{'after/before':>14}",
    ]
    for phase in sorted(
        set(medians["before"]) | set(medians["after"]),
        key=lambda p: -max(medians["before"].get(p, 0.0), medians["after"].get(p, 0.0)),
    ):
        b, a = medians["before"].get(phase), medians["after"].get(phase)
        cells = [f"{x:9.2f}" if x is not None else f"{'-':>9}" for x in (b, a)]
        lines.append(f"  {phase:26}{''.join(cells)}{ratio(a, b) if a and b else '-':>14}".rstrip())
    total = {side: medians[side].get("total", 0.0) for side in SIDES}
    lines.append(
        f"  median grade: before {total['before']:.2f} s, after {total['after']:.2f} s, "
        f"ratio after/before {ratio(total['after'], total['before'])}"
    )
    lines.append(
        f"  submissions per hour (batch wall time): before {rate['before']:.0f}, "
        f"after {rate['after']:.0f}, ratio after/before {ratio(rate['after'], rate['before'])}"
    )
    paired = [a.wall / b.wall for b, a in zip(runs["before"], runs["after"], strict=True)]
    lines.append(
        "  batch wall time after/before, repetition by repetition: "
        f"{', '.join(f'{r:.2f}' for r in paired)} (median {statistics.median(paired):.2f})"
    )
    alike = True
    for n, (b_run, a_run) in enumerate(zip(runs["before"], runs["after"], strict=True), 1):
        result = compare(b_run.out, a_run.out)
        alike = alike and result.identical
        lines.append(
            f"  repetition {n}: {result.same} of {result.total} identical "
            "(score, status and every outcome)"
        )
        lines += [f"    {line}" for line in result.lines]
    return lines, alike


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="the old grader source tree")
    parser.add_argument("--after", type=Path, required=True, help="the new grader source tree")
    parser.add_argument("--assignment", default="fastapi-db-auth")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1, help="batches per side and --jobs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="only the class's first N")
    parser.add_argument("--only", nargs="+", default=None, help="only these class members")
    parser.add_argument("--work", type=Path, default=None, help="class and batch outputs")
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument("--no-warmup", action="store_true")
    args = parser.parse_args()
    interrupt_on_sigterm()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    for tree in trees.values():
        if not (tree / "grader" / "cli.py").is_file():
            parser.error(f"{tree} is not a grader source tree (no grader/cli.py)")
    work = (args.work or Path(tempfile.mkdtemp(prefix="speed-"))).resolve()
    results = args.results or ROOT / "benchmarks" / f"RESULTS-speed-{args.assignment}.txt"
    names = write_class(args.assignment, work / "class", args.only, args.limit)
    header = [
        f"# {' '.join(shlex.quote(a) for a in sys.argv)}",
        f"# {machine()} (at the start)",
        f"# before {trees['before']} at {commit(trees['before'])}",
        f"# after  {trees['after']} at {commit(trees['after'])}",
        f"# class: {len(names)} submissions of {args.assignment} ({', '.join(names[:4])}"
        f"{', ...' if len(names) > 4 else ''}); seed {args.seed}; work folder {work}",
        "# noise: before and after batches alternate, the order flipping every repetition",
    ]
    print("\n".join(header), flush=True)
    for side in () if args.no_warmup else SIDES:  # each tree may build its images its own way
        out = work / f"warmup-{side}"
        wall = run_batch(trees[side], work / "class", args.assignment, out, jobs=2, seed=0)
        print(f"warm-up batch ({side}, --jobs 2, untimed): {wall:.0f} s", flush=True)
    runs: dict[int, dict[str, list[Batch]]] = {j: {s: [] for s in SIDES} for j in args.jobs}
    for rep in range(args.repeat):
        for jobs in args.jobs:
            for side in SIDES if rep % 2 == 0 else SIDES[::-1]:
                out = work / f"{side}-j{jobs}-r{rep + 1}"
                wall = run_batch(
                    trees[side], work / "class", args.assignment, out, jobs=jobs, seed=args.seed
                )
                batch = Batch(out, wall, len(journal(out)), read(out))
                runs[jobs][side].append(batch)
                print(
                    f"repetition {rep + 1}/{args.repeat} --jobs {jobs} {side:6}: "
                    f"{batch.submissions} submissions in {wall:.0f} s "
                    f"({batch.per_hour:.0f} per hour)",
                    flush=True,
                )
    body, alike = [], True
    for jobs in args.jobs:
        lines, same = report(jobs, runs[jobs])
        body += lines
        alike = alike and same
    body.append(f"# {machine()} (at the end)")
    print("\n".join(body))
    results.write_text("\n".join(header + body) + "\n")
    print(f"written to {results}")
    return 0 if alike else 1


if __name__ == "__main__":
    raise SystemExit(main())
