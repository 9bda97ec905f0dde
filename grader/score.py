"""Stage 6: rubric points from outcomes.

An item scores its points times the share of its outcomes that passed (partial credit, rounded
to 0.01), or — `scoring: all` — its points only when all of them passed; an item no outcome speaks
for scores 0. Skipped outcomes ("not checked in local mode")
count neither way, and an item with only skipped outcomes is reported as not checked.

A failed critical outcome (a contract test marked `@pytest.mark.critical`: a security hole such as
a forged token accepted) zeroes its item, whatever else passed: partial credit would dilute the one
test that matters among many that pass. The item's `zeroed_by` says which test and why.
"""

from __future__ import annotations

from grader.assignment import Assignment, Item
from grader.core import CategoryScore, ItemScore, Outcome


def score_items(items: list[Item], outcomes: list[Outcome]) -> list[ItemScore]:
    by_item: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_item.setdefault(outcome.item, []).append(outcome)
    scores = []
    for item in items:
        mine = by_item.get(item.id, [])
        counted = [o for o in mine if not o.skipped]
        passed = sum(1 for o in counted if o.passed)
        share = passed / len(counted) if counted else 0.0
        if item.scoring == "all":
            share = float(share == 1.0)
        breach = next((o for o in counted if o.critical and not o.passed), None)
        if breach is not None:
            share = 0.0
        points = round(item.points * share, 2)
        scores.append(
            ItemScore(
                id=item.id,
                title=item.title,
                category=item.category,
                points=points,
                max_points=item.points,
                visibility=item.visibility,
                outcomes=mine,
                not_checked=bool(mine) and not counted,
                zeroed_by=f"{breach.critical} ({breach.name})" if breach else None,
            )
        )
    return scores


def categories(assignment: Assignment, items: list[ItemScore]) -> list[CategoryScore]:
    result = []
    for cat in assignment.categories:
        mine = [i for i in items if i.category == cat.id]
        if not mine:
            continue
        result.append(
            CategoryScore(
                id=cat.id,
                title=cat.title,
                points=round(sum(i.points for i in mine), 2),
                max_points=round(sum(i.max_points for i in mine), 2),
            )
        )
    return result
