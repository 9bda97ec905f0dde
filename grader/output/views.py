"""What several formats show alike: the summary line, an item's plain-text detail, failures grouped
by cause, the root causes a report opens with. No format is written here (see the writers)."""

from __future__ import annotations

import re

from grader import late, reproduce
from grader.causes import SHOWN
from grader.core import Cause, ItemScore, Outcome, Result, Status

STATUS_TEXT = {
    Status.GRADED: "Graded",
    Status.REJECTED: "Submission refused",
    Status.BUILD_FAILED: "The Docker image did not build",
    Status.START_FAILED: "The app did not start",
    Status.NOT_GRADED: "Not graded (grader problem, not yours)",
}


def summary(result: Result) -> str:
    head = f"{result.assignment}: {status_text(result)}"
    if result.status is Status.NOT_GRADED:
        return f"{head}. {result.reason}"
    text = f"{head}. Score {result.score:g}/{result.max_score:g}"
    if result.late is not None and result.late.penalty:
        text += f" ({work_points(result):g} for the work, −{result.late.penalty:g} late penalty)"
    text += "."
    unchecked = sum(i.max_points for i in result.items if i.not_checked)
    if unchecked:
        text += f" {unchecked:g} points not checked in {result.runtime} mode."
    if result.hidden:
        text += (
            f" {result.hidden} hidden check(s) ({result.hidden_points:g} points) are run "
            "when your instructor grades."
        )
    if result.reason:
        text += f" {result.reason}"
    return text


def work_points(result: Result) -> float:
    """The items' points: the score before a late penalty."""
    return round(sum(i.points for i in result.items), 2)


def late_line(result: Result) -> str | None:
    """The deadline, the submission time (and who says so) and the late penalty in one line;
    None when the assignment has no late policy or nothing was graded."""
    return late.describe(result.late, result.max_score) if result.late is not None else None


def status_text(result: Result) -> str:
    if result.answered_unhealthy:
        return "The app never passed its health check"
    return STATUS_TEXT[result.status]


def not_run(result: Result) -> list[tuple[str, list[ItemScore]]]:
    """The items none of whose checks could run (no image, no app), by reason: (reason, items).
    Each group is one line in a report: the reason is the same for all its items."""
    groups: dict[str, list[ItemScore]] = {}
    for item in result.items:
        if item.outcomes and all(o.not_run for o in item.outcomes):
            groups.setdefault(item.outcomes[0].message, []).append(item)
    return list(groups.items())


def not_run_line(why: str, items: list[ItemScore]) -> str:
    """E.g. "Not run: 21 rubric items (96 points) — the app exited with code 1 before answering.
    Items: …" (the HTML report says the same)."""
    points = sum(i.max_points for i in items)
    return (
        f"Not run: {len(items)} rubric item{'s' if len(items) != 1 else ''} ({points:g} points) — "
        f"{why.removeprefix('Not checked: ')} Items: " + "; ".join(i.title for i in items) + "."
    )


def to_fix(result: Result) -> list[ItemScore]:
    """The failed items a student has something to look at in: not those unchecked in this mode,
    nor those that could not run (one line says why, see `not_run`)."""
    skipped = {id(i) for _, items in not_run(result) for i in items}
    return [i for i in result.items if not i.passed and not i.not_checked and id(i) not in skipped]


def top_causes(result: Result) -> tuple[list[Cause], list[Cause]]:
    """(the root causes a report opens with, the smaller ones). None when nothing ran: the
    reason and the log say it all (a build or start failure)."""
    ran = result.status is Status.GRADED or result.answered_unhealthy
    causes = [c for c in result.causes if c.points > 0 or c.critical] if ran else []
    return causes[:SHOWN], causes[SHOWN:]


def cause_line(c: Cause, items: list[ItemScore]) -> str:
    """What a cause stopped, e.g. "82 checks not checked and 9 failed, in 3 rubric items: Token;
    Users me; Items" (item titles cut short past the third)."""
    blocked, failed = c.blocked, len(c.outcomes) - c.blocked
    parts = [f"{blocked} check{'s' if blocked != 1 else ''} not checked"] if blocked else []
    if failed:
        parts.append(
            f"{failed} failed" if parts else f"{failed} check{'s' if failed != 1 else ''} failed"
        )
    titles = {i.id: i.title for i in items}
    mine = {o.item for o in c.outcomes}
    ids = [i.id for i in items if i.id in mine]  # in the rubric's order
    names = "; ".join(titles.get(i, i) for i in ids[:3]) + ("; …" if len(ids) > 3 else "")
    where = f", in {len(ids)} rubric item{'s' if len(ids) != 1 else ''}: {names}" if ids else ""
    return " and ".join(parts) + where


def example(c: Cause) -> Outcome | None:
    """The outcome that shows a cause best: a failure with a request, else any."""
    with_request = [o for o in c.outcomes if o.exchange is not None]
    return next((o for o in with_request if not o.blocked_by), None) or next(
        iter(with_request or c.outcomes), None
    )


def cause_titles(result: Result) -> dict[int, str]:
    """id(outcome) -> the title of its root cause."""
    return {id(o): c.title for c in result.causes for o in c.outcomes}


def blocked_groups(
    item: ItemScore, titles: dict[int, str] | None = None
) -> list[tuple[str, list[Outcome]]]:
    """An item's tests not checked because a step failed, by root cause ("could not log in (POST
    /login answered 404)"; `titles` from `cause_titles`, else each test's own words): one line
    each in a report, not a failure of what the tests check."""
    groups: dict[str, list[Outcome]] = {}
    for o in item.failures:
        if o.blocked_by:
            groups.setdefault((titles or {}).get(id(o), o.blocked_by), []).append(o)
    return list(groups.items())


def checked_failures(item: ItemScore) -> list[Outcome]:
    """An item's failures of what its tests check (not those a failed step stopped)."""
    return [o for o in item.failures if not o.blocked_by]


def cause(o: Outcome) -> str:
    """What failed, in one line: the last line of the message (or the outcome's name)."""
    return o.message.strip().splitlines()[-1] if o.message.strip() else o.name


def failure_groups(item: ItemScore) -> list[tuple[Outcome, list[Outcome]]]:
    """An item's failures, those with one cause together: (first, the others with the same cause).

    Same cause = the same expectation failed the same way (last message line and expected value),
    e.g. twelve tests that all stop at "POST /things/ status: expected 201".
    """
    groups: dict[tuple[str, str, str | None], list[Outcome]] = {}
    for o in checked_failures(item):
        last = re.sub(
            r"\d+", "N", cause(o)
        )  # "GET /things/1 status" and "GET /things/42 status": one cause
        key = (o.check, last, o.expected) if o.expected is not None else (o.check, o.name, None)
        groups.setdefault(key, []).append(o)
    return [(group[0], group[1:]) for group in groups.values()]


def zeroed(item: ItemScore) -> str:
    """Why a security hole cost the whole item, in one line."""
    return f"0 points: a critical check failed — {item.zeroed_by}"


def item_output(item: ItemScore, titles: dict[int, str] | None = None) -> str:
    if item.not_checked:
        return "\n".join(o.message for o in item.outcomes)
    lines = [zeroed(item)] if item.zeroed_by else []
    total = sum(1 for o in item.outcomes if not o.skipped)
    passed = sum(1 for o in item.outcomes if o.passed and not o.skipped)
    if total:
        lines.append(f"{passed}/{total} checks passed.")
    for why, blocked in blocked_groups(item, titles):
        lines.append(
            f"\nNot checked ({len(blocked)}): {why} — " + ", ".join(o.name for o in blocked)
        )
    for o in checked_failures(item):
        lines.append(f"\n✗ {o.name}: {o.message}".rstrip())
        if o.expected is not None:
            lines.append(f"  expected: {o.expected}")
        if o.actual is not None:
            lines.append(f"  actual:   {o.actual}")
        if o.exchange is not None:
            lines.append(f"  reproduce: {o.exchange.curl()}")
        if o.reference is not None and o.reference.status is not None:
            lines.append(
                f"  reference solution answered {o.reference.status}: {o.reference.response_body or ''}"
            )
    return "\n".join(lines)


def reproducers(result: Result) -> dict[int, tuple[str, str]]:
    """id(outcome) -> (its script's path relative to report.html, the script): grader.reproduce."""
    return reproduce.files(o for item in result.items for o in item.outcomes)
