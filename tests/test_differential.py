"""The differential comparison: what counts as the same answer as the reference's."""

from __future__ import annotations

import json

from grader.checks import differential
from grader.checks.differential import diverges, normalize
from grader.checks.exercised import Api, Credit
from grader.core import Exchange, Outcome

TOKEN_A = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhQGIuY28ifQ.c2lnbmF0dXJlLWEtbG9uZy1lbm91Z2g"
TOKEN_B = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiQGIuY28ifQ.YW5vdGhlci1zaWduYXR1cmUtaGVyZQ"


# every test below reaches GET /x, which works unless a test says otherwise
API = Api(
    {
        "openapi": "3.1.0",
        "paths": {
            path: {"get": {"responses": {"200": {"description": "ok"}}}}
            for path in ("/x", "/y", "/health")
        },
    }
)
WORKS = Credit.of({"GET /x"}, given={"GET /health"})


def compare(
    student: dict[str, list[Exchange]],
    reference: dict[str, list[Exchange]],
    item: str,
    credit: Credit = WORKS,
) -> list[Outcome]:
    return differential.compare(student, reference, item, api=API, credit=credit)


def ex(status: int, body: object = None, method: str = "GET", path: str = "/x") -> Exchange:
    return Exchange(
        method=method,
        url=f"http://127.0.0.1:1234{path}",
        status=status,
        response_body=json.dumps(body) if body is not None else "",
    )


def test_volatile_values_are_normalised() -> None:
    assert normalize({"id": 3, "owner_id": 9, "access_token": TOKEN_A, "n": 3}) == {
        "id": "<id>",
        "owner_id": "<id>",
        "access_token": "<token>",
        "n": 3,
    }
    assert diverges(ex(200, {"access_token": TOKEN_A}), ex(200, {"access_token": TOKEN_B})) is None


def test_extra_fields_and_key_order_are_free_but_values_are_not() -> None:
    ref = ex(200, {"id": 1, "title": "a", "description": None})
    assert (
        diverges(ex(200, {"description": None, "title": "a", "id": 7, "created_at": "x"}), ref)
        is None
    )
    assert (
        diverges(ex(200, {"id": 1, "title": "b", "description": None}), ref)
        == "the body differs from the reference's"
    )
    assert diverges(ex(200, [{"id": 1}, {"id": 2}]), ex(200, [{"id": 1}])) is not None


def test_status_differs_and_error_texts_are_free() -> None:
    assert diverges(ex(200, {}), ex(201, {})) == "status 200 where the reference answers 201"
    assert diverges(ex(404, {"detail": "nope"}), ex(404, {"detail": "User not found"})) is None


def test_first_divergence_per_test_and_reference_answer_attached() -> None:
    student = {
        "t_ok": [ex(201, {"id": 1})],
        "t_bad": [ex(201, {"id": 1}), ex(200, {"x": 1}), ex(500)],
    }
    reference = {
        "t_ok": [ex(201, {"id": 5})],
        "t_bad": [ex(201, {"id": 2}), ex(200, {"x": 2}), ex(204)],
    }
    outcomes = compare(student, reference, "matches-reference")
    by_name = {o.name.split(" · ")[0]: o for o in outcomes}
    assert by_name["t_ok"].passed
    bad = by_name["t_bad"]
    assert not bad.passed and bad.name == "t_bad · request 2"
    assert bad.reference is not None and bad.reference.response_body == '{"x": 2}'


def test_a_failing_contract_test_gets_the_references_answer_to_its_last_request() -> None:
    """A new outcome, the contract check's own left as it was (no check edits another's)."""
    student = {"t_bad": [ex(201), ex(500)], "t_ok": [ex(200)], "t_long": [ex(200), ex(200)]}
    reference = {"t_bad": [ex(201), ex(204), ex(200)], "t_ok": [ex(200)], "t_long": [ex(200)]}
    failing, passing, longer = (
        Outcome(check="contract", name=name, item="i", passed=passed)
        for name, passed in (("t_bad", False), ("t_ok", True), ("t_long", False))
    )
    unseen = Outcome(check="contract", name="t_unseen", item="i", passed=False)
    given = [failing, passing, longer, unseen]
    got = differential.with_reference(given, student, reference)
    assert [o.name for o in got] == ["t_bad", "t_ok", "t_long", "t_unseen"]
    assert got[0].reference is not None and got[0].reference.status == 204  # its 2nd request
    assert got[1:] == given[1:]  # passed, more requests than the reference's, no trace
    assert all(o.reference is None for o in given)


def test_a_cut_body_is_not_a_divergence() -> None:
    from grader.core import cap

    long_list = [{"id": i, "title": "x" * 50, "created_at": "2026-01-01"} for i in range(100)]
    student = Exchange(
        method="GET", url="http://a/items/", status=200, response_body=cap(json.dumps(long_list))
    )
    reference = Exchange(
        method="GET",
        url="http://b/items/",
        status=200,
        response_body=cap(
            json.dumps([{k: v for k, v in r.items() if k != "created_at"} for r in long_list])
        ),
    )
    assert diverges(student, reference) is None
    assert (
        diverges(
            Exchange(method="GET", url="u", status=500, response_body=student.response_body),
            reference,
        )
        is not None
    )


def test_random_env_values_are_masked_before_comparing() -> None:
    """Each run gets fresh ${random_*} values; an app that echoes one (a Basic username) answers
    the same as the reference once both runs' values stand as <NAME>."""
    from grader.assignment import Runtime
    from grader.checks.differential import mask, secrets_of

    runtime = Runtime(
        env={"BASIC_USERNAME": "${random_user}", "MODE": "fixed-${random_x}-no", "PLAIN": "on"}
    )
    mine_env = {"BASIC_USERNAME": "alice-7f3a9c", "MODE": "fixed-aa-no", "PLAIN": "on"}
    theirs_env = {"BASIC_USERNAME": "bob-0d41e2", "MODE": "fixed-bb-no", "PLAIN": "on"}
    assert secrets_of(runtime, mine_env) == {
        "alice-7f3a9c": "<BASIC_USERNAME>",
        "fixed-aa-no": "<MODE>",
    }
    mine = {"t": [ex(200, {"username": "alice-7f3a9c"}, path="/users/me?u=alice-7f3a9c")]}
    theirs = {"t": [ex(200, {"username": "bob-0d41e2"})]}
    assert compare(mine, theirs, "diff")[0].passed is False  # unmasked: a false divergence
    masked_mine = mask(mine, secrets_of(runtime, mine_env))
    masked_theirs = mask(theirs, secrets_of(runtime, theirs_env))
    assert masked_mine["t"][0].url.endswith("u=<BASIC_USERNAME>")
    assert compare(masked_mine, masked_theirs, "diff")[0].passed is True
    wrong = mask({"t": [ex(200, {"username": "someone-else"})]}, secrets_of(runtime, mine_env))
    assert compare(wrong, masked_theirs, "diff")[0].passed is False


def test_a_match_counts_only_where_the_operations_it_reaches_work() -> None:
    """A starter's 404 matches the reference's 404: no credit while GET /y never succeeded; a test
    that reached only the health route, or nothing, compares nothing the assignment asks for."""
    student = {
        "t_y": [ex(404, path="/y")],
        "t_xy": [ex(200, {"a": 1}), ex(404, path="/y")],
        "t_health": [ex(200, {"status": "ok"}, path="/health")],
        "t_none": [],
        "t_off_spec": [ex(404, path="/nowhere")],
        "t_x": [ex(200, {"a": 1})],
    }
    reference = {**student, "t_none": [ex(200, path="/y")]}  # the reference's run went further
    by_name = {o.name: o for o in compare(student, reference, "diff")}
    assert set(by_name) == {"t_y", "t_xy", "t_x", "t_none"}
    assert by_name["t_x"].passed
    for name in ("t_y", "t_xy", "t_none"):
        assert not by_name[name].passed
        assert by_name[name].message.startswith(
            "not credited: GET /y never succeeded in a contract test that passed: "
        )
    everything = Credit.of({"GET /x", "GET /y"}, given={"GET /health"})
    assert all(o.passed for o in compare(student, reference, "diff", credit=everything))
    # a divergence fails as before, whatever works
    wrong = compare({"t_x": [ex(500)]}, {"t_x": [ex(200, {"a": 1})]}, "diff", credit=everything)
    assert [(o.passed, o.name) for o in wrong] == [(False, "t_x · request 1")]
