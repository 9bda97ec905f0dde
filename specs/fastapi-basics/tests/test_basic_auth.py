"""Operation 17: GET /users/me with HTTP Basic (the visible part)."""

import pytest

from grader.testing import expect_status

pytestmark = pytest.mark.rubric("basic-auth")


# One request with the right credentials only: its 200 body holds BASIC_USERNAME, which differs from
# run to run, so it is the one answer here that cannot equal a cached reference answer.
def test_right_credentials_answer_the_username(client, api):
    """GET /users/me with BASIC_USERNAME and BASIC_PASSWORD as HTTP Basic credentials must answer 200 {"username": <BASIC_USERNAME>}."""
    username = api.env["BASIC_USERNAME"]
    r = client.get("/users/me", headers=api.basic(username, api.env["BASIC_PASSWORD"]))
    api.ok(r, {"username": username})


def test_no_credentials_is_401(client):
    """GET /users/me without an Authorization header must answer 401."""
    expect_status(client.get("/users/me"), 401)


def test_no_credentials_asks_for_basic(client, api):
    """GET /users/me without credentials must answer 401 with the header WWW-Authenticate: Basic."""
    api.expect_401(client.get("/users/me"))
