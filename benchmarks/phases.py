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
from pathlib import Path


def summary(out: Path) -> str:
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
    if not ends:
        return f"{out}: no graded submission"
    wall = max(ends) - min(starts)
    lines = [f"{out}: {len(ends)} grades in {wall:.0f} s = {len(ends) * 3600 / wall:.0f} per hour"]
    for phase, values in sorted(timings.items(), key=lambda kv: -statistics.median(kv[1])):
        lines.append(f"  {phase:24} median {statistics.median(values):6.2f} s  (n={len(values)})")
    return "\n".join(lines)


def main() -> None:
    for out in sys.argv[1:]:
        print(summary(Path(out)))


if __name__ == "__main__":
    main()
