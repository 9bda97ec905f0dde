"""Rubric points from outcomes: partial credit, all-or-nothing items, skipped outcomes, critical
tests (a failed one zeroes its item, and the reports say why)."""

from __future__ import annotations

import html
import json
from pathlib import Path

from grader import output
from grader.assignment import Item
from grader.checks.contract import run_suite
from grader.core import CategoryScore, Outcome, Result, Status, Target
from grader.output import markdown
from grader.score import score_items


def _outcomes(item: str, passed: int, failed: int, skipped: int = 0) -> list[Outcome]:
    return (
        [Outcome(check="c", name=f"p{i}", item=item, passed=True) for i in range(passed)]
        + [Outcome(check="c", name=f"f{i}", item=item, passed=False) for i in range(failed)]
        + [
            Outcome(check="c", name=f"s{i}", item=item, passed=False, skipped=True)
            for i in range(skipped)
        ]
    )


def test_partial_all_and_not_checked() -> None:
    items = [
        Item(id="partial", title="t", category="c", points=4, check="c"),
        Item(id="all", title="t", category="c", points=4, check="c", scoring="all"),
        Item(id="all-ok", title="t", category="c", points=3, check="c", scoring="all"),
        Item(id="skipped", title="t", category="c", points=2, check="c"),
        Item(id="silent", title="t", category="c", points=1, check="c"),
    ]
    outcomes = (
        _outcomes("partial", 3, 1)
        + _outcomes("all", 3, 1)
        + _outcomes("all-ok", 5, 0, skipped=1)
        + _outcomes("skipped", 0, 0, skipped=2)
    )
    scores = {s.id: s for s in score_items(items, outcomes)}
    assert scores["partial"].points == 3.0
    assert scores["all"].points == 0.0 and not scores["all"].passed
    assert (
        scores["all-ok"].points == 3.0 and scores["all-ok"].passed
    )  # skipped ones count neither way
    assert scores["skipped"].points == 0.0 and scores["skipped"].not_checked
    assert scores["silent"].points == 0.0 and not scores["silent"].not_checked


def _critical(item: str, name: str, *, passed: bool, skipped: bool = False) -> Outcome:
    return Outcome(
        check="contract",
        name=name,
        item=item,
        passed=passed,
        skipped=skipped,
        critical="accepts a forged token",
    )


def test_a_failed_critical_outcome_zeroes_its_item_and_says_why() -> None:
    items = [
        Item(id="auth", title="t", category="c", points=8, check="contract"),
        Item(id="other", title="t", category="c", points=2, check="contract"),
    ]
    outcomes = [
        *_outcomes("auth", 9, 0),
        _critical("auth", "test_forged[alg-none]", passed=False),
        *_outcomes("other", 1, 1),
    ]
    scores = {s.id: s for s in score_items(items, outcomes)}
    assert scores["auth"].points == 0.0 and not scores["auth"].passed  # 9 of 10 passed: 7.2 before
    assert scores["auth"].zeroed_by == "accepts a forged token (test_forged[alg-none])"
    assert scores["auth"].to_dict()["zeroed_by"] == scores["auth"].zeroed_by
    assert (
        scores["other"].points == 1.0 and scores["other"].zeroed_by is None
    )  # other items keep partial credit


def test_passed_or_skipped_critical_outcomes_zero_nothing() -> None:
    items = [
        Item(id="passed", title="t", category="c", points=4, check="contract"),
        Item(id="skipped", title="t", category="c", points=4, check="contract"),
    ]
    outcomes = [
        *_outcomes("passed", 2, 1),
        _critical("passed", "crit", passed=True),
        *_outcomes("skipped", 3, 1),
        _critical("skipped", "crit", passed=False, skipped=True),
    ]
    scores = {s.id: s for s in score_items(items, outcomes)}
    assert scores["passed"].points == 3.0 and scores["passed"].zeroed_by is None
    assert scores["skipped"].points == 3.0 and scores["skipped"].zeroed_by is None


CRITICAL_SUITE = '''
import httpx
import pytest

@pytest.mark.rubric("auth")
@pytest.mark.critical("POST /token gives a token for a wrong password")
def test_wrong_password_refused():
    assert False, "POST /token answered 200"

@pytest.mark.rubric("auth")
@pytest.mark.critical
def test_forged_token_refused():
    """A forged token must be refused."""

@pytest.mark.rubric("auth")
def test_plain():
    pass

@pytest.mark.rubric("leaks")
@pytest.mark.critical("leaks the password")
def test_no_leak():
    pytest.skip("not checked: nothing answered")

@pytest.mark.rubric("leaks")
def test_leaks_plain():
    assert False

@pytest.mark.rubric("leaks")
@pytest.mark.critical("leaks the hash")
def test_no_answer():
    raise httpx.ReadTimeout("GET /users/ did not answer within 10 s")
'''


def test_the_contract_plugin_records_the_marker_and_the_report_says_why(tmp_path: Path) -> None:
    """Through the real plugin and report: the marker's reason (or the test's doc) is recorded on
    its outcome, a failed one zeroes its item in results.json, full.json and report.html; a skipped
    one, or one that failed without an expectation failing (no answer), zeroes nothing."""
    tests = tmp_path / "suite"
    tests.mkdir()
    (tests / "test_suite.py").write_text(CRITICAL_SUITE)
    outcomes = run_suite(tests, Target(base_url="http://127.0.0.1:9")).outcomes
    critical = {o.name: o.critical for o in outcomes}
    assert critical == {
        "test_wrong_password_refused": "POST /token gives a token for a wrong password",
        "test_forged_token_refused": "A forged token must be refused.",
        "test_plain": None,
        "test_no_leak": "leaks the password",
        "test_leaks_plain": None,
        "test_no_answer": None,
    }  # failed without an expectation failing: no hole shown

    items = [
        Item(id="auth", title="Tokens", category="c", points=6, check="contract"),
        Item(id="leaks", title="No leaks", category="c", points=4, check="contract"),
    ]
    scores = score_items(items, outcomes)
    by_id = {s.id: s for s in scores}
    assert by_id["auth"].points == 0.0  # 2 of 3 passed
    assert (
        by_id["leaks"].points == 0.0 and by_id["leaks"].zeroed_by is None
    )  # 0 of 2 counted, not zeroed
    result = Result(
        assignment="demo",
        assignment_version="1",
        submission="s",
        seed=0,
        status=Status.GRADED,
        score=0.0,
        max_score=10.0,
        items=scores,
        categories=[CategoryScore("c", "C", 0.0, 10.0)],
    )
    paths = output.write(result, tmp_path / "out")
    why = (
        "0 points: a critical check failed — POST /token gives a token for a wrong password "
        "(test_wrong_password_refused)"
    )
    tests_json = {t["tags"][1]: t for t in json.loads(paths["results.json"].read_text())["tests"]}
    assert tests_json["auth"]["output"].startswith(why)
    assert why not in tests_json["leaks"]["output"]
    full = {i["id"]: i for i in json.loads(paths["full.json"].read_text())["items"]}
    assert (
        full["auth"]["zeroed_by"]
        == "POST /token gives a token for a wrong password (test_wrong_password_refused)"
    )
    assert full["leaks"]["zeroed_by"] is None
    assert [o["critical"] for o in full["leaks"]["outcomes"]] == ["leaks the password", None, None]
    page = paths["report.html"].read_text()
    assert page.count("a critical check failed") == 1 and html.escape(why) in page
    assert why in markdown.render(result)
