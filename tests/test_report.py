"""Stage 7 on a hand-made Result: Gradescope JSON, HTML (also rendered in headless Chromium),
Markdown and JUnit XML."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from grader import output
from grader.core import (
    CategoryScore,
    Cause,
    Exchange,
    ItemScore,
    MigrateRun,
    Outcome,
    Result,
    Status,
)
from grader.output import gradescope, junit, markdown, views


def _result(status: Status = Status.GRADED) -> Result:
    ex = Exchange(
        method="POST",
        url="http://localhost:8000/users/",
        status=200,
        request_headers={"content-type": "application/json"},
        request_body='{"email":"a@b.co","password":"12345678"}',
        response_body='{"id":1}',
    )
    ref = Exchange(method="POST", url="http://x/users/", status=201, response_body='{"id":1}')
    fails = [
        Outcome(
            check="contract",
            name=f"test_create[{i}]",
            item="create",
            passed=False,
            message="POST /users/ must answer 201.\nPOST /users/ status",
            expected="status 201",
            actual="status 200",
            exchange=ex,
            reference=ref,
        )
        for i in range(3)
    ]
    items = [
        ItemScore(
            id="create",
            title="Users are created with 201",
            category="users",
            points=1.0,
            max_points=4.0,
            visibility="visible",
            outcomes=[*fails, Outcome(check="contract", name="ok", item="create", passed=True)],
        ),
        ItemScore(
            id="builds",
            title="The image builds",
            category="deploy",
            points=0.0,
            max_points=6.0,
            visibility="visible",
            not_checked=True,
            outcomes=[
                Outcome(
                    check="build",
                    name="builds",
                    item="builds",
                    passed=False,
                    skipped=True,
                    message="Not checked in local mode",
                )
            ],
        ),
    ]
    return Result(
        assignment="demo",
        assignment_version="1-abc",
        submission="alice",
        seed=0,
        status=status,
        score=1.0,
        max_score=10.0,
        items=items,
        categories=[
            CategoryScore("users", "Users", 1.0, 4.0),
            CategoryScore("deploy", "Deploy", 0.0, 6.0),
        ],
        timings={"build": 1.0, "total": 9.5},
        app_log="INFO started",
        runtime="local",
        hidden=2,
        hidden_points=7.0,
    )


def _blocked_result() -> Result:
    """POST /token answers 404: two tests are not checked (their log-in step failed), one test of
    the route itself fails; one cause, which costs 3 points, and a smaller one."""
    token = Exchange(
        method="POST",
        url="http://localhost:8000/token",
        status=404,
        response_body='{"detail":"Not Found"}',
    )
    login = "could not log in (POST /token answered 404)"
    blocked = [
        Outcome(
            check="contract",
            name=f"test_blocked_{n}",
            item="auth",
            passed=False,
            message=f"Checks something.\nNot checked: {login}.",
            expected="status 200",
            actual="status 404",
            exchange=token,
            blocked_by=login,
        )
        for n in (1, 2)
    ]
    route = Outcome(
        check="contract",
        name="test_token_route",
        item="auth",
        passed=False,
        message="POST /token must answer 200.\nPOST /token status",
        expected="status 200",
        actual="status 404",
        exchange=token,
    )
    other = Outcome(
        check="contract",
        name="test_health",
        item="health",
        passed=False,
        message="GET /health must answer 200.\nGET /health status",
        expected="status 200",
        actual="status 500",
        exchange=Exchange(method="GET", url="http://localhost:8000/health", status=500),
    )
    items = [
        ItemScore(
            id="auth",
            title="Tokens",
            category="api",
            points=1.0,
            max_points=4.0,
            visibility="visible",
            outcomes=[*blocked, route, Outcome("contract", "ok", "auth", True)],
        ),
        ItemScore(
            id="health",
            title="Health",
            category="api",
            points=1.0,
            max_points=2.0,
            visibility="visible",
            outcomes=[other, Outcome("contract", "ok2", "health", True)],
        ),
    ]
    causes = [
        Cause(title=login, points=3.0, outcomes=[route, *blocked]),
        Cause(title="GET /health answered 500", points=1.0, outcomes=[other]),
    ]
    return Result(
        assignment="demo",
        assignment_version="1",
        submission="carol",
        seed=0,
        status=Status.GRADED,
        score=2.0,
        max_score=6.0,
        items=items,
        causes=causes,
        categories=[CategoryScore("api", "API", 2.0, 6.0)],
    )


def test_the_report_opens_with_the_root_causes() -> None:
    result = _blocked_result()
    page = output.html.render(result)
    causes, details = page.index("Where the points went"), page.index("What to fix")
    assert causes < page.index("could not log in (POST /token answered 404)") < details
    assert causes < page.index("GET /health answered 500") < details
    assert page.index("−3 points") < page.index("−1 points") < details
    assert "2 checks not checked and 1 failed, in 1 rubric item: Tokens" in page
    # the blocked tests: one line under their cause, not failures of what they check
    assert "Not checked (2): could not log in (POST /token answered 404)" in page
    assert '<a href="#cause-1">root cause 1</a>' in page
    assert "✗ test_blocked" not in page and "✗ test_token_route" in page
    md = markdown.render(result)
    assert (
        md.index("### Where the points went")
        < md.index("**−3 points: could not log in")
        < md.index("### To fix")
    )
    assert (
        "not checked (2): could not log in (POST /token answered 404)" in md
        and "`test_blocked_1`" not in md
    )
    auth = next(t for t in gradescope.results(result)["tests"] if t["tags"][1] == "auth")
    assert (
        "Not checked (2): could not log in (POST /token answered 404) — test_blocked_1, test_blocked_2"
        in auth["output"]
    )
    assert "✗ test_blocked" not in auth["output"]


def test_no_causes_section_when_nothing_ran() -> None:
    """A build or start failure: the reason and the log come first; a list of causes would only
    repeat them."""
    result = _blocked_result()
    result.status, result.reason = Status.BUILD_FAILED, "the image did not build"
    assert "Where the points went" not in output.html.render(result)
    assert "Where the points went" not in markdown.render(result)
    result.status, result.answered_unhealthy = Status.START_FAILED, True  # the checks ran anyway
    assert "Where the points went" in output.html.render(result)


def test_gradescope_json() -> None:
    data = gradescope.results(_result())
    assert data["score"] == 1.0 and data["execution_time"] == 9.5
    assert {t["name"] for t in data["tests"]} == {
        "users: Users are created with 201",
        "deploy: The image builds",
    }
    create = next(t for t in data["tests"] if t["tags"][1] == "create")
    assert create["status"] == "failed" and create["max_score"] == 4.0
    assert (
        "curl -i -X POST" in create["output"]
        and "reference solution answered 201" in create["output"]
    )
    assert data["extra_data"]["timings"]["total"] == 9.5
    assert "score" not in gradescope.results(_result(Status.NOT_GRADED))


def test_html_groups_one_cause_and_shows_the_reference(tmp_path: Path) -> None:
    html = output.html.render(_result())
    assert html.count("✗ test_create[") == 1, "three failures with one cause are shown once"
    assert "The same failure also stops 2 more checks" in html
    assert "reference solution" in html and "201" in html
    assert "Not checked in local mode" in html and "The image builds (6)" in html
    assert "2 hidden check(s) (7 points) are run when your instructor grades" in html
    assert "What to fix (1 rubric item)" in html  # the unchecked item is not a failure to fix


def test_markdown_and_junit() -> None:
    md = markdown.render(_result())
    assert "| Users | 1 / 4 |" in md and "… and 2 more with the same cause" in md
    root = ET.fromstring(junit.render(_result()))
    cases = root.findall(".//testcase")
    assert len(cases) == 2
    assert root.find(".//testcase[@name='Users are created with 201']/failure") is not None
    assert root.find(".//testcase[@name='The image builds']/skipped") is not None


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is missing: run `grader setup --for-tests`")
    paths = output.write(_blocked_result(), tmp_path)
    assert json.loads(paths["results.json"].read_text())["score"] == 2.0
    assert json.loads(paths["full.json"].read_text())["causes"][0]["blocked"] == 2
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1100,1600",
            f"--screenshot={tmp_path / 'shot.png'}",
            paths["report.html"].as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    shot = tmp_path / "shot.png"
    assert shot.is_file() and shot.stat().st_size > 10_000, done.stderr[-2000:]


def test_failures_differing_only_in_numbers_are_one_cause() -> None:
    outcomes = [
        Outcome(
            check="contract",
            name=f"t[{n}]",
            item="i",
            passed=False,
            message=f"GET /things/{n} status",
            expected="status 200",
            actual="status 501",
        )
        for n in (1, 42)
    ]
    outcomes.append(
        Outcome(
            check="contract",
            name="t[abc]",
            item="i",
            passed=False,
            message="GET /things/abc status",
            expected="status 422",
            actual="status 501",
        )
    )
    item = ItemScore(
        id="i",
        title="t",
        category="c",
        points=0.0,
        max_points=1.0,
        visibility="visible",
        outcomes=outcomes,
    )
    assert [(first.name, len(same)) for first, same in views.failure_groups(item)] == [
        ("t[1]", 1),
        ("t[abc]", 0),
    ]


def _start_failed() -> Result:
    """An app that crashed at import: 21 items could not run, the migrate command failed too."""
    why = (
        "the app exited with code 1 before answering; the last error in the log: "
        "ModuleNotFoundError: No module named 'psycopg'"
    )
    items = [
        ItemScore(
            id="builds",
            title="The image builds",
            category="deploy",
            points=6.0,
            max_points=6.0,
            visibility="visible",
            outcomes=[Outcome(check="build", name="builds", item="builds", passed=True)],
        ),
        ItemScore(
            id="starts",
            title="The app starts",
            category="deploy",
            points=0.0,
            max_points=4.0,
            visibility="visible",
            outcomes=[
                Outcome(check="start", name="starts", item="starts", passed=False, message=why)
            ],
        ),
    ]
    items += [
        ItemScore(
            id=f"api-{n}",
            title=f"API item {n}",
            category="api",
            points=0.0,
            max_points=4.0,
            visibility="visible",
            outcomes=[
                Outcome(
                    check="contract",
                    name=f"api-{n} (not run)",
                    item=f"api-{n}",
                    passed=False,
                    message=f"Not checked: {why}",
                    not_run=True,
                )
            ],
        )
        for n in range(21)
    ]
    log = (
        "\x1b[32mINFO\x1b[0m:     Started server process [7]\nTraceback (most recent call last):\n"
        '  File "/srv/app/main.py", line 1, in <module>\n    import psycopg\n'
        "ModuleNotFoundError: No module named 'psycopg'\n"
    )
    return Result(
        assignment="demo",
        assignment_version="1-abc",
        submission="bob",
        seed=0,
        status=Status.START_FAILED,
        reason=why,
        score=6.0,
        max_score=94.0,
        items=items,
        categories=[
            CategoryScore("deploy", "Deploy", 6.0, 10.0),
            CategoryScore("api", "API", 0.0, 84.0),
        ],
        timings={"build": 3.0, "total": 12.0},
        app_log=log,
        build_log="Step 1/4 : FROM x",
        migrate=MigrateRun(
            command=["alembic", "upgrade", "head"],
            exit_code=1,
            log="\x1b[31mERROR\x1b[0m [alembic] ModuleNotFoundError: psycopg",
        ),
    )


def test_a_start_failure_reads_from_its_cause(tmp_path: Path) -> None:
    result = _start_failed()
    html = output.html.render(result)
    assert "\x1b" not in html, "ANSI colour codes are removed from every log"
    assert (
        "INFO:     Started server process" in html and "ERROR [alembic] ModuleNotFoundError" in html
    )
    # the 21 items that could not run: one line, not 21 boxes
    assert html.count("Not checked:") == 0 and html.count("(not run)") == 0
    assert "Not run: 21 rubric items (84 points)" in html
    assert (
        html.count("ModuleNotFoundError: No module named &#39;psycopg&#39;") == 4
    )  # reason, line, start, log
    assert "What to fix (1 rubric item)" in html  # the start item, with its reason
    # the logs come right after the reason, before the scores
    assert (
        html.index("The app did not start.")
        < html.index("App log")
        < html.index("Score by category")
    )
    assert html.index("Migrate command alone") < html.index("Score by category")
    assert html.index("Passed (1)") < html.index("Build log")  # it built: its log is no cause
    assert "<b>exited with code 1</b>" in html
    full = result.to_dict()
    assert full["migrate"] == {
        "command": ["alembic", "upgrade", "head"],
        "exit_code": 1,
        "log": "\x1b[31mERROR\x1b[0m [alembic] ModuleNotFoundError: psycopg",
    }
    md = markdown.render(result)
    assert (
        md.count("API item") == 21
        and md.count("Not run: 21 rubric items (84 points) — the app exited") == 1
    )
    assert "(not run)" not in md


def test_logs_stay_at_the_end_of_a_graded_report() -> None:
    result = _result()
    result.build_log = "Step 1/4 : FROM python:3.11-slim"
    html = output.html.render(result)
    assert html.index("What to fix") < html.index("Build log") < html.index("App log")


@pytest.mark.parametrize("make", [_result, _blocked_result])
def test_a_result_read_back_renders_the_same(make: Any) -> None:
    """full.json read back (Result.from_dict) is the same Result to every writer."""
    result = make()
    again = Result.from_dict(json.loads(output.full.render(result)))
    assert again.to_dict() == result.to_dict()
    assert output.html.render(again) == output.html.render(result)
    assert markdown.render(again) == markdown.render(result)
    assert gradescope.results(again) == gradescope.results(result)
