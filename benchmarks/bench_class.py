"""The fixed class the issue-14 benchmarks grade, and what they share: running a `grader batch` of
a given grader source tree, naming that tree's commit, describing the machine.

The class of an assignment, in this order: `reference` (its reference solution), `starter` (its
student template), `example-<name>` (the spec's sample files), `mutant-<name>` and
`variant-<name>` (specs/<id>/mutants/mutants.yaml). `speed.py` and `determinism.py` use it.
"""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from grader.variants import IGNORED, Mutant, Sample, load, materialize, samples  # noqa: E402


def write_class(
    assignment: str, dest: Path, only: list[str] | None = None, limit: int | None = None
) -> list[str]:
    """Materialize the class into `dest` (which must not exist); `only` keeps the named members,
    `limit` the first so many. Returns the members' folder names."""
    specs = ROOT / "specs" / assignment
    trees = {
        "reference": ROOT / "reference_solution" / assignment,
        "starter": ROOT / "student_template" / assignment,
    }
    made: dict[str, Path | Mutant | Sample] = {k: v for k, v in trees.items() if v.is_dir()}
    for sample in samples(specs / "examples"):
        made[f"example-{sample.name}"] = sample
    if (specs / "mutants" / "mutants.yaml").is_file():
        for m in load(specs / "mutants" / "mutants.yaml"):
            made[f"{m.kind}-{m.name}"] = m
    if only:
        unknown = sorted(set(only) - set(made))
        if unknown:
            raise SystemExit(f"not in the class: {unknown}; members: {sorted(made)}")
        made = {name: what for name, what in made.items() if name in only}
    names = list(made)[:limit]
    dest.mkdir(parents=True)
    for name in names:
        what = made[name]
        if isinstance(what, Path):
            shutil.copytree(what, dest / name, ignore=shutil.ignore_patterns(*IGNORED))
        else:
            materialize(what, dest / name)
    return names


def run_batch(
    tree: Path, class_dir: Path, assignment: str, out: Path, *, jobs: int, seed: int
) -> float:
    """`grader batch` of the grader at `tree` (its log beside `out`); returns its wall seconds."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "grader.cli", "batch", str(class_dir)]
    command += ["--assignment", assignment, "--out", str(out), "--jobs", str(jobs)]
    command += ["--seed", str(seed)]
    log = out.with_name(out.name + ".log")
    start = time.monotonic()
    with open(log, "w") as sink:
        code = finish(subprocess.Popen(command, env=env, cwd=tree, stdout=sink, stderr=sink))
    wall = time.monotonic() - start
    if code != 0 and not (out / "journal.jsonl").is_file():
        raise SystemExit(f"the batch of {tree} failed (exit {code}), see {log}")
    return wall


def finish(child: subprocess.Popen[Any]) -> int:
    """Wait for a grader command; interrupted, SIGTERM it first (the grader then removes its
    containers itself) and wait for that."""
    try:
        return child.wait()
    except BaseException:
        child.terminate()
        child.wait(timeout=300)
        raise


def interrupt_on_sigterm() -> None:
    """SIGTERM interrupts like Ctrl-C, so that the `finally`s run."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def commit(tree: Path) -> str:
    """The tree's commit, `+dirty` when it has uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else "?"

    head = git("rev-parse", "--short=12", "HEAD")
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def machine() -> str:
    """Date, core counts and load: what a timing means depends on them."""
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{now}, os.cpu_count {os.cpu_count()}, nproc {nproc}, load average {load}"
