"""Rubric points from outcomes: partial credit, all-or-nothing items, skipped outcomes."""

from __future__ import annotations

from grader.assignment import Item
from grader.core import Outcome
from grader.score import score_items


def _outcomes(item: str, passed: int, failed: int, skipped: int = 0) -> list[Outcome]:
    return ([Outcome(check="c", name=f"p{i}", item=item, passed=True) for i in range(passed)]
            + [Outcome(check="c", name=f"f{i}", item=item, passed=False) for i in range(failed)]
            + [Outcome(check="c", name=f"s{i}", item=item, passed=False, skipped=True) for i in range(skipped)])


def test_partial_all_and_not_checked() -> None:
    items = [Item(id="partial", title="t", category="c", points=4, check="c"),
             Item(id="all", title="t", category="c", points=4, check="c", scoring="all"),
             Item(id="all-ok", title="t", category="c", points=3, check="c", scoring="all"),
             Item(id="skipped", title="t", category="c", points=2, check="c"),
             Item(id="silent", title="t", category="c", points=1, check="c")]
    outcomes = (_outcomes("partial", 3, 1) + _outcomes("all", 3, 1) + _outcomes("all-ok", 5, 0, skipped=1)
                + _outcomes("skipped", 0, 0, skipped=2))
    scores = {s.id: s for s in score_items(items, outcomes)}
    assert scores["partial"].points == 3.0
    assert scores["all"].points == 0.0 and not scores["all"].passed
    assert scores["all-ok"].points == 3.0 and scores["all-ok"].passed  # skipped ones count neither way
    assert scores["skipped"].points == 0.0 and scores["skipped"].not_checked
    assert scores["silent"].points == 0.0 and not scores["silent"].not_checked
