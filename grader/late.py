"""Deadlines and late work: when a submission came in, against which deadline, and what it costs.

The policy is the assignment's `late:` section (grader.assignment.LatePolicy), applied as Canvas'
automatic late deduction does: every day late or part of one, counted from the deadline, takes
`penalty_per_day` percent of the max score (the points possible, not the points earned); a
submission within `grace_minutes` after the deadline is on time; more than `max_days` days late is
not accepted and scores 0 (graded all the same, so the report still shows what the work was worth).
The penalty is never folded into the items' points: the result's `late` section holds it, and the
score is the items' points minus it, never below 0.

The deadline is the assignment's, or the student's own (an extension: the batch roster's
`deadline`). The submission time is, in this order: the one given (the roster's `submitted_at`,
or `grader grade --submitted-at`: an upload time), else for a git source the graded commit's
committer date, else unknown (no penalty, and the report says so). A commit's date is set on the
student's own machine: the time of the push, from the Git host, is the one to trust.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Literal

from grader.assignment import Assignment, LatePolicy
from grader.core import GraderFault, Late

DAY = timedelta(days=1)
COMMIT_DATE = "commit date"
# where a given time came from: the batch's roster, or `grader grade --submitted-at/--due`
Given = Literal["command line", "roster"]
NOTE_COMMIT = (
    "the commit date is set on the student's own machine; the push time (from the Git host) is "
    "what to trust: give it as submitted_at in the roster"
)


def parse_time(text: str) -> datetime:
    """An ISO 8601 time with its offset (2026-12-01T23:59:00+03:00, …Z); ValueError otherwise:
    a time without one would be read in whatever zone the grading machine is in."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-12-01T23:59:00+03:00)"
        ) from None
    if moment.utcoffset() is None:
        raise ValueError(f"{text!r} has no timezone offset (add one: +03:00, Z)")
    return moment


def check(spec: Assignment, *, due: datetime | None) -> None:
    """Refuse, before anything is built, a deadline of the student's own for an assignment with
    no late policy: nothing would say what lateness costs."""
    if due is not None and spec.late is None:
        raise GraderFault(
            f"a deadline of the student's own was given, but assignment {spec.id!r} has no late "
            "policy (`late:` in its assignment.yaml)"
        )


def days_late(submitted: datetime, deadline: datetime, grace_minutes: float) -> int:
    """Days late, each started day after the deadline counting; 0 on time or within the grace."""
    late_by = submitted - deadline  # aware times: offsets apart, the same instant compares equal
    if late_by <= timedelta(minutes=grace_minutes):
        return 0
    return math.ceil(late_by / DAY)


def assess(
    policy: LatePolicy,
    *,
    max_score: float,
    points: float,
    submitted_at: datetime | None,
    source: str,
    due: datetime | None = None,
) -> Late:
    """The late section of a result whose items hold `points` of `max_score`: `due` is the
    student's own deadline (an extension) when given; `source` says where `submitted_at` came from."""
    deadline = due or policy.deadline
    days = days_late(submitted_at, deadline, policy.grace_minutes) if submitted_at else 0
    too_late = policy.max_days is not None and days > policy.max_days
    owed = points if too_late else days * policy.penalty_per_day / 100 * max_score
    return Late(
        deadline=deadline.isoformat(),
        extension=due is not None,
        submitted_at=submitted_at.isoformat() if submitted_at else None,
        source=source if submitted_at else "",
        grace_minutes=policy.grace_minutes,
        penalty_per_day=policy.penalty_per_day,
        max_days=policy.max_days,
        days=days,
        too_late=too_late,
        penalty=round(min(points, owed), 2),
    )


def final_score(points: float, late: Late | None) -> float:
    """The score: the items' points minus the late penalty, never below 0."""
    return round(max(0.0, points - (late.penalty if late else 0.0)), 2)


def describe(late: Late, max_score: float) -> str:
    """The late section in one line, the same in every report: e.g. "Late penalty −20 points: 2
    days late (…); submitted at 2026-12-03T10:00:00+03:00 (from the roster); deadline …"."""
    deadline = f"deadline {late.deadline}" + (" (an extension)" if late.extension else "")
    if late.submitted_at is None:
        return (
            f"Submission time unknown (none given, not a git source): no late penalty applied; "
            f"{deadline}."
        )
    shown = datetime.fromisoformat(late.submitted_at).astimezone(
        datetime.fromisoformat(late.deadline).tzinfo
    )
    when = f"submitted at {shown.isoformat()} (from the {late.source}); {deadline}"
    if late.source == COMMIT_DATE:
        when += f" — {NOTE_COMMIT}"
    if late.days == 0:
        grace = f", with a grace of {late.grace_minutes:g} minutes" if late.grace_minutes else ""
        return f"On time{grace}: {when}."
    day_s = "day" if late.days == 1 else "days"
    if late.too_late:
        return (
            f"Late penalty −{late.penalty:g} points: {late.days} {day_s} late, more than "
            f"the {late.max_days} accepted: not accepted, 0 points; {when}."
        )
    rule = f"{late.penalty_per_day:g}% of {max_score:g} points per day or part of one"
    return (
        f"Late penalty −{late.penalty:g} points: {late.days} {day_s} late ({rule}, "
        f"the score never below 0); {when}."
    )
