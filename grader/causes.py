"""Stage 6, after scoring: every failed outcome grouped by its root cause, with what it costs.

One broken route fails many checks: the tests that need it as a step ("not checked: could not log
in (POST /login answered 404)"), the tests of the route itself, the differential comparisons and
the fuzzer's findings. They share one key — the failing request's operation, with the concrete
path put back to the spec's path template (`POST /people/17/things/` is `POST
/people/{person_id}/things/`), and its status — so a student sees one cause with its total cost, not
forty failures. A success answered where the contract wants another status is keyed by that
status too ("answered 201 instead of 401": each missing check is a cause of its own). A failed
critical test is a cause of its own, named by what it means (a security hole); checks that could
not run share their reason.

Points: an item's lost points are split evenly over its failed outcomes; an item zeroed by a
critical test gives all of them to that test's cause; lost points without a failure are a cause
of the item's own. A failure without a request whose words name an operation with failing requests
("not credited: POST /login never succeeded") joins their cause; others share a cause with those
in the same words.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from grader.assignment import Assignment
from grader.core import Cause, ItemScore, Outcome
from grader.routes import Routes

SHOWN = 5  # the causes a report opens with; the others are summed up in one line
_STATUSES = re.compile(r"^(?:status |HTTP )?(\d{3}(?:(?:, | or )\d{3})*)\b")
_OPERATION = re.compile(r"\b(GET|PUT|POST|DELETE|PATCH|HEAD|OPTIONS) (/[^\s,;:()]*)")


@dataclass
class _Group:
    title: str
    points: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)
    critical: str | None = None


def root_causes(assignment: Assignment, items: list[ItemScore]) -> list[Cause]:
    """The root causes of `items`' lost points, costliest first."""
    routes = Routes.read(assignment.spec_path)
    groups: dict[tuple[str, ...], _Group] = {}
    wordy: list[tuple[tuple[str, ...], str, Outcome, float]] = []  # failures without a request
    for item in items:
        lost = max(0.0, item.max_points - item.points)
        failed = item.failures
        if not failed:
            if lost > 0 and not item.not_checked:
                group = groups.setdefault(
                    ("item", item.id),
                    _Group(f"{item.title}: {lost:g} of {item.max_points:g} points not earned"),
                )
                group.points += lost
            continue
        breach = next((o for o in failed if o.critical), None) if item.zeroed_by else None
        for o in failed:
            share = lost / len(failed) if breach is None else lost if o is breach else 0.0
            key, title = classify(o, routes)
            if key[0] == "outcome":
                wordy.append((key, title, o, share))
                continue
            group = groups.setdefault(key, _Group(title))
            group.outcomes.append(o)
            group.points += share
            if o is breach:
                group.critical = o.critical
    for key, title, o, share in wordy:
        group = _named_request(o, groups, routes) or groups.setdefault(key, _Group(title))
        group.outcomes.append(o)
        group.points += share
    causes = [
        Cause(
            title=_title(g, routes),
            points=round(g.points, 2),
            outcomes=sorted(g.outcomes, key=_severity),
            critical=g.critical,
        )
        for g in groups.values()
    ]
    return sorted(causes, key=lambda c: (-c.points, -len(c.outcomes), c.title))


def _named_request(
    o: Outcome, groups: dict[tuple[str, ...], _Group], routes: Routes
) -> _Group | None:
    """The costliest group of failing requests to an operation that `o`'s words name ("not
    credited: POST /login never succeeded" goes with "POST /login answered 404"), if any."""
    named = {f"{m[1]} {routes.template(m[2])}" for m in _OPERATION.finditer(_first_line(o))}
    found = [g for key, g in groups.items() if key[0] == "request" and key[1] in named]
    return max(found, key=lambda g: (g.points, len(g.outcomes)), default=None)


def classify(o: Outcome, routes: Routes) -> tuple[tuple[str, ...], str]:
    """(the key of `o`'s root cause, a title for it)."""
    if o.not_run:
        why = o.message.removeprefix("Not checked: ").strip()
        return ("not run", why), f"not run: {why}"
    if o.critical and not o.blocked_by:
        return ("critical", o.critical), f"security: {o.critical}"
    ex = o.exchange
    if ex is not None:
        op = f"{ex.method} {routes.template(urlsplit(ex.url).path or '/')}"
        if ex.status is None:
            return ("request", op, "none"), f"{op} got no answer"
        if 200 <= ex.status < 300:
            wanted = _statuses(o.expected)
            if wanted and ex.status not in wanted:
                return (
                    ("request", op, str(ex.status), str(wanted[0])),
                    f"{op} answered {ex.status} instead of {wanted[0]}",
                )
            wrong = f"{op} answered {ex.status}, not with what the contract says"
            return ("request", op, str(ex.status), "answer"), wrong
        return ("request", op, str(ex.status)), f"{op} answered {ex.status}"
    if o.blocked_by:
        return ("blocked", o.blocked_by), o.blocked_by
    # the same words, numbers and details after a second colon aside ("not credited: POST /x
    # never succeeded: <which check>"): one cause
    head = ": ".join(_first_line(o).split(": ")[:2])
    return ("outcome", re.sub(r"\d+", "N", head)), head


def _statuses(expected: str | None) -> list[int]:
    """The statuses an expectation names ("status 200 or 201", a reference's "401 {...}")."""
    m = _STATUSES.match(expected or "")
    return [int(s) for s in re.findall(r"\d{3}", m[1])] if m else []


def _title(group: _Group, routes: Routes) -> str:
    """The group's title; a step that failed on its request names it best ("could not log in
    (POST /login answered 404)"), with the request's path put back to its template."""
    steps: Counter[str] = Counter()
    for o in group.outcomes:
        if o.blocked_by and o.exchange is not None:
            path = urlsplit(o.exchange.url).path or "/"
            named = f"{o.exchange.method} {path}"
            steps[
                o.blocked_by.replace(named, f"{o.exchange.method} {routes.template(path)}", 1)
            ] += 1
    if steps:
        return steps.most_common(1)[0][0]
    return group.title


def _first_line(o: Outcome) -> str:
    line = next((t.strip() for t in o.message.splitlines() if t.strip()), "") or o.name
    return line if len(line) <= 200 else line[:199] + "…"


def _severity(o: Outcome) -> tuple[int, str]:
    """Security holes first, then failures of what a test checks, then tests not checked."""
    return (
        0 if o.critical and not o.blocked_by else 2 if o.blocked_by or o.not_run else 1,
        o.check,
    )
