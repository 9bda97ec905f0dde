"""changes.csv of `grader batch --regrade`: each student whose grade moved when the assignment
changed, old → new, and the rubric items whose points moved (grader.regrade computes them)."""

from __future__ import annotations

from typing import Any

from grader.core import csv_text
from grader.regrade import Change, fingerprint

NAME = "changes.csv"
HEADER = [
    "student",
    "old_score",
    "new_score",
    "change",
    "old_status",
    "new_status",
    "items",
    "resubmitted",
    "old_version",
    "new_version",
    "report",
]


def number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def items(change: Change) -> str:
    """The moved items, `id old → new` joined by "; " ("—": the item was not there)."""
    if change.items is None:
        return "points per item not recorded"
    return "; ".join(
        f"{item} {number(old) or '—'} → {number(new) or '—'}" for item, old, new in change.items
    )


def render(changes: list[Change]) -> str:
    rows: list[list[Any]] = [list(HEADER)]
    for c in changes:
        rows.append(
            [
                c.student,
                number(c.old["score"]),
                number(c.new["score"]),
                "" if c.delta is None else f"{c.delta:+g}",
                c.old["status"],
                c.new["status"],
                items(c),
                "yes" if c.resubmitted else "",
                fingerprint(c.old),
                fingerprint(c.new),
                c.new["report"],
            ]
        )
    return csv_text(rows)
