"""Compare two `grader batch` output folders of the same class: the same score, status and
outcomes (each test's pass/fail) for every student, or what moved.

    python benchmarks/compare_grades.py OLD_OUT NEW_OUT

A refactor must show no difference; a change that means to move grades shows exactly which.
Exit 1 when anything differs.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def journal(out: Path) -> dict[str, dict[str, Any]]:
    """The latest journal entry per student."""
    entries: dict[str, dict[str, Any]] = {}
    for line in (out / "journal.jsonl").read_text().splitlines():
        entry = json.loads(line)
        entries[entry["student"]] = entry
    return entries


def outcomes(out: Path, entry: dict[str, Any]) -> dict[tuple[str, str], bool]:
    """Each test's pass/fail, from the grade's full.json beside its report."""
    path = out / Path(entry["report"]).parent / "full.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return {(i["id"], o["name"]): o["passed"] for i in data["items"] for o in i["outcomes"]}


@dataclass
class Comparison:
    same: int  # students with the same score, status and every outcome
    total: int
    lines: list[str]  # what differs, student by student

    @property
    def identical(self) -> bool:
        return self.same == self.total


def compare(old_out: Path, new_out: Path) -> Comparison:
    old, new = journal(old_out), journal(new_out)
    same, lines = 0, []
    for student in sorted(set(old) | set(new)):
        a, b = old.get(student), new.get(student)
        if a is None or b is None:
            lines.append(f"{student}: only in {'new' if a is None else 'old'}")
            continue
        x, y = outcomes(old_out, a), outcomes(new_out, b)
        moved = [key for key in sorted(set(x) | set(y)) if x.get(key) != y.get(key)]
        if (a["score"], a["status"]) == (b["score"], b["status"]) and not moved:
            same += 1
            continue
        lines.append(f"{student}: {a['status']} {a['score']} -> {b['status']} {b['score']}")
        for item, name in moved[:6]:
            lines.append(f"    {item}: {name[:90]}: {x.get((item, name))} -> {y.get((item, name))}")
    return Comparison(same, len(set(old) | set(new)), lines)


def main() -> int:
    result = compare(Path(sys.argv[1]), Path(sys.argv[2]))
    for line in result.lines:
        print(line)
    print(f"{result.same} of {result.total} identical (score, status and every outcome)")
    return 0 if result.identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
