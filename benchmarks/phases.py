"""Where the time of a `grader batch` went: per-phase medians over its grades, the median grade,
and the batch's throughput, read from the grades it wrote (no grading again).

    python benchmarks/phases.py OUT_DIR [OUT_DIR ...]

Phases are the keys of each result's `timings` (build, database_ready, app_ready, check:<name>,
cleanup, total, ...). The batch's wall time runs from the first grade's start (its full.json
written minus its seconds) to the last full.json written.
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Phases:
    """The timings of a batch's graded submissions (not those "not graded")."""

    timings: dict[str, list[float]]  # phase -> seconds, one value per grade that has the phase
    grades: int
    wall: float  # first grade's start to last grade's end, seconds

    def medians(self) -> dict[str, float]:
        """Each phase's median, the slowest first."""
        meds = {phase: statistics.median(values) for phase, values in self.timings.items()}
        return dict(sorted(meds.items(), key=lambda kv: -kv[1]))


def read(out: Path) -> Phases:
    timings: dict[str, list[float]] = {}
    starts, ends = [], []
    for line in (out / "journal.jsonl").read_text().splitlines():
        entry = json.loads(line)
        full = out / Path(entry["report"]).parent / "full.json"
        if entry["status"] == "not_graded" or not full.is_file():
            continue
        for phase, seconds in json.loads(full.read_text())["timings"].items():
            timings.setdefault(phase, []).append(seconds)
        ends.append(full.stat().st_mtime)
        starts.append(ends[-1] - entry["seconds"])
    wall = max(ends) - min(starts) if ends else 0.0
    return Phases(timings, len(ends), wall)


def pooled(batches: list[Phases]) -> Phases:
    """Several batches' grades as one sample (their walls added)."""
    timings: dict[str, list[float]] = {}
    for batch in batches:
        for phase, values in batch.timings.items():
            timings.setdefault(phase, []).extend(values)
    return Phases(timings, sum(b.grades for b in batches), sum(b.wall for b in batches))


def summary(out: Path) -> str:
    batch = read(out)
    if not batch.grades:
        return f"{out}: no graded submission"
    per_hour = batch.grades * 3600 / batch.wall
    lines = [f"{out}: {batch.grades} grades in {batch.wall:.0f} s = {per_hour:.0f} per hour"]
    for phase, seconds in batch.medians().items():
        n = len(batch.timings[phase])
        lines.append(f"  {phase:24} median {seconds:6.2f} s  (n={n})")
    return "\n".join(lines)


def main() -> None:
    for out in sys.argv[1:]:
        print(summary(Path(out)))


if __name__ == "__main__":
    main()
