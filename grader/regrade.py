"""Regrades that show what changed.

`grader batch` keys each grade by the assignment's fingerprint (grader.assignment): editing a test,
the rubric or the reference makes the earlier grades *stale*. A batch refuses to grade beside
stale grades (`StaleGrades`, exit 2): a class graded half with one version of the assignment and
half with another would read as one gradebook. `--regrade` regrades the stale ones (resumable like
any batch), and `changes.csv` and a section of index.html list each student whose grade moved,
old → new, with the rubric items whose points moved.

Nothing earlier is lost: the journal keeps every line, each with the grade's points per rubric
item (`items`); and before a stale grade is redone, its full.json (every outcome and message: what
explains the old points) is kept in the student's folder as `full-<fingerprint>.json`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.core import Result, Status, write_atomic
from grader.output import full


class StaleGrades(Exception):
    """Grades made with an earlier version of the assignment, and no `--regrade`."""

    def __init__(self, stale: list[dict[str, Any]], total: int) -> None:
        self.stale = sorted(e["student"] for e in stale)
        super().__init__(
            f"{len(stale)} of {total} grades were made with an earlier version of the assignment "
            "(its tests, rubric or reference changed): nothing graded, so that old and new grades "
            "do not mix. Pass --regrade to regrade them (the earlier grades are kept; changes.csv "
            "and index.html show what moved), or restore the assignment."
        )


def fingerprint(entry: dict[str, Any]) -> str:
    """The assignment version a journal entry was graded with. Its key is `student|content|
    fingerprint|seed`; a student's name (or a git ref) may hold "|", a fingerprint and a seed never."""
    return str(entry["key"]).rsplit("|", 2)[1]


def stale(
    latest: dict[str, dict[str, Any]], students: Iterable[str], version: str
) -> list[dict[str, Any]]:
    """The latest grades of `students` (by student, from the journal) made with another version
    of the assignment than `version`."""
    return [latest[s] for s in students if s in latest and fingerprint(latest[s]) != version]


def _submission(entry: dict[str, Any]) -> str:
    student, _, content = str(entry["key"]).rsplit("|", 2)[0].rpartition("|")
    return f"{student}|{content.split('@', 1)[0]}"  # not the roster's times: "@" never in a hash


def _result(path: Path, entry: dict[str, Any], version: str) -> Result | None:
    """The Result in `path` when it is the grade of journal `entry` (made with `version`)."""
    try:
        result = full.read(path)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    same = (
        str(result.status) == entry["status"]
        and result.score == entry["score"]
        and result.assignment_version == version
    )
    return result if same else None


def detail(folder: Path, entry: dict[str, Any], version: str) -> dict[str, Any]:
    """What a journal line keeps of a grade beside its status and score: the points of each rubric
    item (from the full.json just written in `folder`), so a later regrade can say which items
    moved. Nothing when the grade made no result (not graded)."""
    if entry["status"] == Status.NOT_GRADED:
        return {}
    result = _result(folder / full.NAME, entry, version)
    return {"items": {i.id: i.points for i in result.items}} if result else {}


def _kept(out: Path, entry: dict[str, Any]) -> Path:
    return (out / str(entry["report"])).with_name(f"full-{fingerprint(entry)}.json")


def keep_previous(out: Path, entries: Iterable[dict[str, Any]]) -> None:
    """Before these (stale) grades are redone, keep each one's full.json as `full-<fingerprint>
    .json` beside it: a regrade writes a new full.json in its place."""
    for entry in entries:
        current = (out / entry["report"]).with_name(full.NAME)
        if _result(current, entry, fingerprint(entry)) is not None:
            write_atomic(_kept(out, entry), current.read_text(encoding="utf-8"))


def _items(out: Path, entry: dict[str, Any]) -> dict[str, float] | None:
    """An entry's points per item: its journal line's, else (a line written before lines kept
    them) its kept full.json's; None when neither is there."""
    if "items" in entry:
        return {str(k): float(v) for k, v in entry["items"].items()}
    result = _result(_kept(out, entry), entry, fingerprint(entry))
    return {i.id: i.points for i in result.items} if result else None


@dataclass(frozen=True)
class Change:
    """A student whose grade moved between two versions of the assignment."""

    student: str
    old: dict[str, Any]  # journal entries
    new: dict[str, Any]
    # rubric items whose points moved: (id, old, new), None where the item was not in that
    # version's rubric; empty when one grade is "not graded", None when one grade's points per
    # item are not known
    items: list[tuple[str, float | None, float | None]] | None
    resubmitted: bool  # the submission changed too, not only the assignment

    @property
    def delta(self) -> float | None:
        old, new = self.old["score"], self.new["score"]
        return None if old is None or new is None else new - old


@dataclass(frozen=True)
class Regrade:
    compared: int  # students graded with this version and, before, with another
    changes: list[Change]  # those whose score or status moved, by student
    stale: list[str]  # students whose latest grade is of another version, by name


def compare(history: Iterable[dict[str, Any]], out: Path, version: str | None = None) -> Regrade:
    """What regrading changed, from the journal's lines in order: each student's latest grade
    against their latest grade made with another version of the assignment before it. `version`:
    the assignment's fingerprint now (None: the latest grades' own), grades of another are stale."""
    lines: dict[str, list[dict[str, Any]]] = {}
    for entry in history:
        lines.setdefault(entry["student"], []).append(entry)
    compared, changes, stale = 0, [], []
    for student in sorted(lines):
        *earlier, new = lines[student]
        if version is not None and fingerprint(new) != version:
            stale.append(student)
            continue
        old = next((e for e in reversed(earlier) if fingerprint(e) != fingerprint(new)), None)
        if old is None:
            continue
        compared += 1
        if (old["score"], old["status"]) == (new["score"], new["status"]):
            continue
        changes.append(
            Change(student, old, new, _moved(out, old, new), _submission(old) != _submission(new))
        )
    return Regrade(compared, changes, stale)


def _moved(
    out: Path, old: dict[str, Any], new: dict[str, Any]
) -> list[tuple[str, float | None, float | None]] | None:
    if Status.NOT_GRADED in (old["status"], new["status"]):
        return []  # graded ↔ not graded: the status says it, item by item would be noise
    before, after = _items(out, old), _items(out, new)
    if before is None or after is None:
        return None
    ids = [*before, *(i for i in after if i not in before)]
    return [(i, before.get(i), after.get(i)) for i in ids if before.get(i) != after.get(i)]
