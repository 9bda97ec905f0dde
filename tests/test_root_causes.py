"""Root causes first (issue 12): a failed setup step makes a test "not checked" under its cause —
still costing its share, never its item —, every failure is grouped by its root cause with the
points it costs, and the report opens with the causes.

The grouping on made-up outcomes; the step API through the real contract plugin against a real
HTTP server on loopback; a real Docker grade of the reference without its token route.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, benchmark_mutants
from docker import DockerClient
from stub_server import Handler, serving

from grader import assignment as assignments
from grader.causes import root_causes
from grader.checks.contract import run_suite
from grader.core import Exchange, ItemScore, Outcome, Status, Target
from grader.engine import leftovers
from grader.output import markdown
from grader.pipeline import grade
from grader.routes import Routes
from grader.score import score_items

DB_AUTH = assignments.load("fastapi-db-auth")


# the grouping ---------------------------------------------------------------------------------
def _ex(method: str, path: str, status: int | None) -> Exchange:
    return Exchange(method=method, url=f"http://localhost:8000{path}", status=status)


def _fail(item: str, name: str, ex: Exchange | None = None, **kw: object) -> Outcome:
    return Outcome(
        check=str(kw.pop("check", "contract")),
        name=name,
        item=item,
        passed=False,
        exchange=ex,
        **kw,
    )


def _item(
    id: str, points: float, max_points: float, outcomes: list[Outcome], zeroed_by: str | None = None
) -> ItemScore:
    return ItemScore(
        id=id,
        title=f"Item {id}",
        category="c",
        points=points,
        max_points=max_points,
        visibility="visible",
        outcomes=outcomes,
        zeroed_by=zeroed_by,
    )


def test_concrete_paths_are_put_back_to_the_specs_templates() -> None:
    routes = Routes.read(DB_AUTH.spec_path)
    assert routes.template("/users/me") == "/users/me"  # a literal path before a template
    assert routes.template("/users/17") == "/users/{user_id}"
    assert routes.template("/users/17/items/") == "/users/{user_id}/items/"
    assert routes.template("/users/me/items/") == "/users/me/items/"
    assert routes.template("/nowhere/1") == "/nowhere/1"


def test_a_step_failure_and_its_knock_ons_are_one_cause_with_their_points() -> None:
    """A blocked test, a test of the route itself, a differential comparison, a fuzzing finding
    and a "not credited" line naming the operation: one cause, "could not create an item (POST
    /users/{user_id}/items/ answered 404)", whatever the user ids in the paths."""
    blocked = [
        _fail(
            "items",
            f"test_b{n}",
            _ex("POST", f"/users/{n}/items/", 404),
            blocked_by=f"could not create an item (POST /users/{n}/items/ answered 404)",
        )
        for n in (3, 17)
    ]
    route = _fail(
        "items", "test_create", _ex("POST", "/users/5/items/", 404), expected="status 201"
    )
    diff = _fail(
        "same",
        "test_b3 · request 4",
        _ex("POST", "/users/3/items/", 404),
        check="differential",
        expected='201 {"id": 1}',
    )
    fuzz = _fail(
        "fuzz",
        "POST /users/{user_id}/items/ · status_code_conformance · 404",
        _ex("POST", "/users/9/items/", 404),
        check="schemathesis",
    )
    uncredited = _fail(
        "fuzz",
        "POST /users/{user_id}/items/ · not credited",
        check="schemathesis",
        message="not credited: POST /users/{user_id}/items/ never succeeded (no documented "
        "success answer): not_a_server_error found nothing wrong",
    )
    unrelated = _fail(
        "items", "test_missing", _ex("GET", "/items/2000000000", 500), expected="status 404"
    )
    items = [
        _item(
            "items",
            1.0,
            5.0,
            [*blocked, route, unrelated, Outcome("contract", "ok", "items", True)],
        ),
        _item("same", 1.0, 2.0, [diff, Outcome("differential", "ok", "same", True)]),
        _item("fuzz", 0.0, 3.0, [fuzz, uncredited]),
    ]
    causes = root_causes(DB_AUTH, items)
    assert [c.title for c in causes] == [
        "could not create an item (POST /users/{user_id}/items/ answered 404)",
        "GET /items/{item_id} answered 500",
    ]
    main = causes[0]
    assert {o.name for o in main.outcomes} == {
        o.name for o in (*blocked, route, diff, fuzz, uncredited)
    }
    assert (
        main.blocked == 2 and main.points == 3.0 + 1.0 + 3.0
    )  # 3 of the 4 items' failures, all the others
    assert causes[1].points == 1.0
    assert [o.blocked_by is not None for o in main.outcomes][-2:] == [
        True,
        True,
    ]  # tests not checked last
    assert main.to_dict()["blocked"] == 2 and main.to_dict()["failed"] == 4


def test_critical_wrong_success_body_not_run_and_uncredited_are_causes_of_their_own() -> None:
    hole = _fail(
        "auth",
        "test_forged",
        _ex("GET", "/users/me", 200),
        critical="forged tokens must be refused",
        expected="refused (401)",
    )
    missing_check = [
        _fail(
            "auth",
            f"test_no_token[{n}]",
            _ex("POST", f"/users/{n}/items/", 201),
            expected="status 401",
        )
        for n in (1, 2)
    ]
    diff_401 = _fail(
        "same",
        "test_x · request 2",
        _ex("POST", "/users/4/items/", 201),
        check="differential",
        expected='401 {"detail": "Not authenticated"}',
    )
    wrong_body = _fail(
        "same",
        "test_y · request 1",
        _ex("GET", "/users/me", 200),
        check="differential",
        expected='200 {"email": "a@b.c"}',
    )
    why = "Not checked: the app exited with code 1 before answering"
    not_run = [
        Outcome("contract", f"{i} (not run)", i, False, message=why, not_run=True)
        for i in ("n1", "n2")
    ]
    items = [
        _item(
            "auth",
            0.0,
            8.0,
            [hole, *missing_check, Outcome("contract", "ok", "auth", True)],
            zeroed_by="forged tokens must be refused (test_forged)",
        ),
        _item("same", 0.0, 2.0, [diff_401, wrong_body]),
        _item("n1", 0.0, 1.0, [not_run[0]]),
        _item("n2", 0.0, 1.0, [not_run[1]]),
        _item("quiet", 0.5, 1.5, [Outcome("fuzz", "ok", "quiet", True)]),
    ]
    causes = {c.title: c for c in root_causes(DB_AUTH, items)}
    assert (
        causes["security: forged tokens must be refused"].points == 8.0
    )  # the zeroed item, all of it
    assert (
        causes["security: forged tokens must be refused"].critical
        == "forged tokens must be refused"
    )
    no_401 = causes["POST /users/{user_id}/items/ answered 201 instead of 401"]
    assert (
        len(no_401.outcomes) == 3 and no_401.points == 1.0
    )  # the zeroed item's other failures cost 0
    assert causes["GET /users/me answered 200, not with what the contract says"].points == 1.0
    assert causes["not run: the app exited with code 1 before answering"].points == 2.0
    assert causes["Item quiet: 1 of 1.5 points not earned"].points == 1.0
    assert round(sum(c.points for c in causes.values()), 2) == 8 + 2 + 2 + 1


# the step API, through the real plugin -------------------------------------------------------------
class _App(Handler):
    """POST /token is missing (404); POST /users/ answers 201 with the password's hash."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/users/":
            self.answer(
                201, {"id": 1, "email": "a@example.com", "hashed_password": "$argon2id$..."}
            )
        else:
            self.answer(404, {"detail": "Not Found"})

    def do_GET(self) -> None:
        self.answer(200, {"id": None} if self.path == "/users/1" else {"status": "ok"})


@pytest.fixture
def app() -> Iterator[str]:
    with serving(_App) as url:
        yield url


STEP_SUITE = '''
import pytest
from grader.testing import Mismatch, expect_status, step

def login(client):
    with step("log in"):
        expect_status(client.post("/token", data={"username": "a", "password": "b"}), 200)

@pytest.mark.rubric("auth")
@pytest.mark.critical("a wrong password is refused")
def test_wrong_password_refused(client):
    """POST /token refuses a wrong password."""
    login(client)

@pytest.mark.rubric("auth")
def test_token_route(client):
    expect_status(client.post("/token", data={"username": "a", "password": "b"}), 200)

@pytest.mark.rubric("auth")
def test_nested(client):
    with step("register two users and log in"):
        expect_status(client.post("/users/", json={}), 201)
        login(client)

@pytest.mark.rubric("leaks")
@pytest.mark.critical("no password in an answer")
def test_leak(client):
    with step("register a user"):
        r = client.post("/users/", json={})
        expect_status(r, 201)
    assert "hashed_password" not in r.json(), "the hash is in the answer"

@pytest.mark.rubric("leaks")
def test_step_judging_an_earlier_answer(client):
    r = client.get("/users/1")
    with step("read the user's id"):
        raise Mismatch("GET /users/1 body: id", expected="an integer", actual=r.json())

@pytest.mark.rubric("leaks")
def test_a_bug_in_a_step_is_no_step_failure(client):
    with step("log in"):
        {}["missing"]

@pytest.mark.rubric("leaks")
def test_a_skip_in_a_step_stays_a_skip(client):
    with step("log in"):
        pytest.skip("not applicable here")
'''


def _step_assignment(root: Path) -> assignments.Assignment:
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_steps.py").write_text(STEP_SUITE)
    (root / "openapi.yaml").write_text(
        textwrap.dedent("""
        openapi: 3.1.0
        info: {title: steps, version: '1'}
        paths: {/token: {}, /users/: {}, '/users/{user_id}': {}}
    """)
    )
    (root / "assignment.yaml").write_text(
        textwrap.dedent("""
        id: steps
        title: Steps
        categories: [{id: c, title: C}]
        items:
          - {id: auth, title: Tokens, category: c, points: 60, check: contract}
          - {id: leaks, title: No leaks, category: c, points: 40, check: contract}
    """)
    )
    return assignments.load(root)


def test_a_failed_step_blocks_its_test_without_hiding_a_hole(app: str, tmp_path: Path) -> None:
    spec = _step_assignment(tmp_path / "steps")
    outcomes = {o.name: o for o in run_suite(spec.tests_dir, Target(base_url=app)).outcomes}
    login = "could not log in (POST /token answered 404)"
    blocked = outcomes["test_wrong_password_refused"]
    assert blocked.blocked_by == login
    assert (
        not blocked.passed and not blocked.skipped and blocked.critical is None
    )  # costs its share only
    assert blocked.exchange is not None and blocked.exchange.url.endswith("/token")
    assert blocked.expected == "status 200" and "Not checked: " + login in blocked.message
    assert outcomes["test_nested"].blocked_by == login  # the innermost step names the cause
    assert outcomes["test_token_route"].blocked_by is None  # its subject is the request: a failure
    leak = outcomes["test_leak"]
    assert (
        leak.blocked_by is None and leak.critical == "no password in an answer"
    )  # the step passed
    judged = outcomes["test_step_judging_an_earlier_answer"]
    assert judged.blocked_by == (
        "could not read the user's id (GET /users/1 answered 200, not with what the contract says)"
    )
    bug = outcomes["test_a_bug_in_a_step_is_no_step_failure"]
    assert bug.blocked_by is None and "KeyError" in bug.message
    assert outcomes["test_a_skip_in_a_step_stays_a_skip"].skipped

    items = {i.id: i for i in score_items(spec.items, list(outcomes.values()))}
    assert items["auth"].points == 0.0 and items["auth"].zeroed_by is None
    assert items["leaks"].zeroed_by == "no password in an answer (test_leak)"
    causes = root_causes(spec, list(items.values()))
    assert [(c.title, c.points, c.blocked) for c in causes][:2] == [
        (login, 60.0, 2),
        ("security: no password in an answer", 40.0, 0),
    ]
    assert round(sum(c.points for c in causes), 2) == 100.0


# a real grade ----------------------------------------------------------------------------------------
@pytest.mark.docker
def test_an_app_without_its_token_route_shows_one_root_cause(
    tmp_path: Path, docker_client: DockerClient
) -> None:
    """The reference without POST /token: the tests that need to log in are not checked, under
    "could not log in (POST /token answered 404)", which carries most lost points; at most five
    causes; the report opens with them."""
    mutants = benchmark_mutants()
    reference = ROOT / "reference_solution" / "fastapi-db-auth"
    no_token = mutants.Mutant(
        name="no-token-route",
        bug="POST /token is not routed",
        category="auth",
        kind="mutant",
        reference=reference,
        edits=(mutants.Edit("app/main.py", "app.include_router(auth.router)\n", ""),),
    )
    app = mutants.materialize(no_token, tmp_path / "app")
    out = tmp_path / "out"
    result = grade(submission_path=app, assignment="fastapi-db-auth", out=out)
    assert result.status is Status.GRADED, result.reason
    outcomes = {o.name: o for i in result.items for o in i.outcomes}
    leak_test = outcomes["test_no_password_in_any_user_response"]
    assert leak_test.blocked_by == "could not log in (POST /token answered 404)", leak_test.message
    assert not leak_test.passed and not leak_test.skipped and leak_test.critical is None
    assert not any(i.zeroed_by for i in result.items)

    lost = result.max_score - result.score
    assert 0 < len(result.causes) <= 5, [c.title for c in result.causes]
    first = result.causes[0]
    assert first.title == "could not log in (POST /token answered 404)"
    assert first.points >= 0.9 * lost, [(c.title, c.points) for c in result.causes]
    assert {"contract", "differential"} <= {o.check for o in first.outcomes}
    assert first.blocked >= 30
    assert abs(sum(c.points for c in result.causes) - lost) < 0.05

    full = json.loads((out / "full.json").read_text())
    assert (
        full["causes"][0]["title"] == first.title and full["causes"][0]["blocked"] == first.blocked
    )
    page = (out / "report.html").read_text()
    assert (
        page.index("Where the points went")
        < page.index("could not log in")
        < page.index("What to fix")
    )
    assert "✗ test_no_password_in_any_user_response" not in page  # not a failure of what it checks
    assert "Not checked (1): could not log in (POST /token answered 404)" in page
    assert "### Where the points went" in markdown.render(result)
    assert not leftovers(docker_client, runs={result.run_id})
