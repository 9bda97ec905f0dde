"""Operation 1: GET / (also the health check)."""

import pytest

from grader.testing import Mismatch, expect_status

pytestmark = pytest.mark.rubric("root")


def test_root_answers_200(client):
    """GET / must answer 200."""
    expect_status(client.get("/"), 200)


def test_root_says_hello_world(client, api):
    """GET / must answer exactly {"message": "Hello World"}."""
    api.ok(client.get("/"), {"message": "Hello World"}, exact=True)


def test_root_is_json(client):
    """GET / must answer with Content-Type: application/json."""
    r = client.get("/")
    expect_status(r, 200)
    kind = r.headers.get("content-type", "")
    if kind.split(";")[0].strip().lower() != "application/json":
        raise Mismatch(
            "GET / header Content-Type",
            expected="application/json",
            actual=kind or "header missing",
        )


def test_root_ignores_unknown_query_parameters(client, api):
    """GET /?lang=fr must still answer {"message": "Hello World"}: unknown query parameters are ignored."""
    api.ok(client.get("/", params={"lang": "fr"}), {"message": "Hello World"})
