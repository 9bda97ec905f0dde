"""Operation 17, hidden part: GET /users/me rejects wrong and malformed credentials with 401."""

import base64

import pytest

pytestmark = pytest.mark.rubric("basic-auth-rejects")


def _case(api, case):
    user, password = api.env["BASIC_USERNAME"], api.env["BASIC_PASSWORD"]
    b64 = base64.b64encode
    return {
        "wrong-password": api.basic(user, "wrong-password"),
        "wrong-username": api.basic("wrong-username", password),
        "empty-password": api.basic(user, ""),
        "swapped": api.basic(password, user),
        "username-prefix": api.basic(user[:-1], password),
        "password-prefix": api.basic(user, password[:-1]),
        "password-with-suffix": api.basic(user, password + "x"),
        "bearer-scheme": {"Authorization": f"Bearer {password}"},
        "not-base64": {"Authorization": "Basic %%%not-base64%%%"},
        "no-colon": {"Authorization": f"Basic {b64((user + password).encode()).decode()}"},
        "scheme-only": {"Authorization": "Basic"},
    }[case]


CASES = [
    "wrong-password",
    "wrong-username",
    "empty-password",
    "swapped",
    "username-prefix",
    "password-prefix",
    "password-with-suffix",
    "bearer-scheme",
    "not-base64",
    "no-colon",
    "scheme-only",
]


@pytest.mark.parametrize("case", CASES)
def test_rejected_credentials_are_401(client, api, case):
    """GET /users/me with wrong or malformed credentials must answer 401 with WWW-Authenticate: Basic."""
    api.expect_401(client.get("/users/me", headers=_case(api, case)))


@pytest.mark.critical("GET /users/me must let in BASIC_USERNAME:BASIC_PASSWORD only")
def test_wrong_credentials_are_never_let_in(client, api):
    """GET /users/me, which answers the right BASIC_USERNAME and BASIC_PASSWORD, must refuse every wrong or malformed credential and a request without any."""
    for case in CASES:
        api.expect_refused(
            client.get("/users/me", headers=_case(api, case)), f"credentials: {case}"
        )
    api.expect_refused(client.get("/users/me"), "no credentials")
    # refusing everyone shows no hole, and no working route: then nothing was checked
    right = api.basic(api.env["BASIC_USERNAME"], api.env["BASIC_PASSWORD"])
    with api.step("log in with BASIC_USERNAME and BASIC_PASSWORD"):
        api.expect_success(client.get("/users/me", headers=right))
