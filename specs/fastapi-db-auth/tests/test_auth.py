"""Rows 5-7: POST /token, GET /users/me, GET /users/me/basic.

Tests marked critical check a security property (a wrong password refused, tokens signed with the
environment's key): one failing zeroes its rubric item.
"""

import time

import jwt
import pytest

from grader.testing import Mismatch, expect_equal, expect_json, expect_status

TOKEN = pytest.mark.rubric("token")
ME = pytest.mark.rubric("users-me")
BASIC = pytest.mark.rubric("basic-auth")
HMAC = ("HS256", "HS384", "HS512")  # the algorithms a SECRET_KEY signs with


def _read_jwt(token):
    """(header, claims) of a token, unverified; a token that is not a JWT fails as a Mismatch."""
    try:
        return jwt.get_unverified_header(token), jwt.decode(
            token, options={"verify_signature": False}
        )
    except jwt.PyJWTError as exc:
        raise Mismatch(
            "POST /token access_token", expected="a JWT", actual=f"{token[:60]!r} ({exc})"
        ) from None


# token --------------------------------------------------------------------------------------------
@TOKEN
def test_token_returns_bearer_token(client, api):
    """POST /token with the right e-mail and password must answer 200 {"access_token": ..., "token_type": "bearer"}."""
    user = api.shared("owner", login=False)
    r = client.post("/token", data={"username": user.email, "password": user.password})
    expect_status(r, 200)
    body = expect_json(r)
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("access_token"), str)
        or not body["access_token"]
    ):
        raise Mismatch(
            "POST /token body",
            expected='{"access_token": "<jwt>", "token_type": "bearer"}',
            actual=body,
        )
    expect_equal(body.get("token_type"), "bearer", "POST /token body: token_type")
    api.expect_no_secrets(r)


@TOKEN
def test_token_is_hs256_jwt_signed_with_secret_key(api):
    """The access token must be a JWT signed with SECRET_KEY using HS256."""
    user = api.shared("owner")
    try:
        header = jwt.get_unverified_header(user.token)
    except jwt.PyJWTError as exc:
        raise Mismatch(
            "POST /token access_token", expected="a JWT", actual=f"{user.token[:60]!r} ({exc})"
        ) from None
    expect_equal(header.get("alg"), "HS256", "JWT header alg")
    try:
        jwt.decode(user.token, api.secret, algorithms=["HS256"], options={"verify_exp": False})
    except jwt.PyJWTError as exc:
        raise Mismatch(
            "JWT signature",
            expected="signed with the SECRET_KEY environment variable",
            actual=f"does not verify: {exc}",
        ) from None


@TOKEN
def test_token_claims_sub_and_exp(api):
    """The token's claims must be sub = the user's e-mail and exp = now + ACCESS_TOKEN_EXPIRE_MINUTES."""
    user = api.shared("owner", login=False)
    user.token = api.login(user.email, user.password)  # issued now: exp is compared with the clock
    claims = jwt.decode(user.token, options={"verify_signature": False})
    expect_equal(claims.get("sub"), user.email, "JWT claim sub")
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)):
        raise Mismatch("JWT claim exp", expected="a numeric expiry time", actual=claims)
    want = time.time() + api.expire_minutes * 60
    if abs(exp - want) > 120:
        raise Mismatch(
            "JWT claim exp",
            expected=f"about now + {api.expire_minutes} minutes ({int(want)})",
            actual=f"{exp} ({(exp - time.time()) / 60:.1f} minutes from now)",
        )


@TOKEN
def test_token_wrong_password_is_401(client, api):
    """A wrong password must answer 401 {"detail": "Incorrect username or password"} with WWW-Authenticate: Bearer."""
    user = api.shared("owner", login=False)
    r = client.post("/token", data={"username": user.email, "password": "wrong-password-1"})
    expect_status(r, 401)
    api.expect_detail(r, "Incorrect username or password")
    api.expect_challenge(r, "Bearer")


@TOKEN
def test_token_unknown_email_is_401(client, api):
    """An e-mail nobody registered must answer 401 {"detail": "Incorrect username or password"} with WWW-Authenticate: Bearer."""
    r = client.post("/token", data={"username": api.email(), "password": api.PASSWORD})
    expect_status(r, 401)
    api.expect_detail(r, "Incorrect username or password")
    api.expect_challenge(r, "Bearer")


@TOKEN
@pytest.mark.critical("POST /token must give no token for a wrong password")
def test_token_refused_for_a_wrong_password(client, api):
    """POST /token, which gives the registered user a token for the right password, must give none for a wrong one."""
    user = api.shared("owner")  # its steps: register a user, log in
    api.expect_refused(
        client.post("/token", data={"username": user.email, "password": "wrong-password-1"}),
        "a wrong password",
    )


@TOKEN
@pytest.mark.critical(
    "tokens must be signed with SECRET_KEY from the environment, never a key in the code"
)
def test_token_is_signed_with_the_secret_key_from_the_environment(api):
    """The access token must be signed with the SECRET_KEY the app was started with (a new random one each run), never with a key written in the code."""
    user = api.shared("owner")  # its steps: register a user, log in
    with api.step("read the access token as a JWT"):
        alg = _read_jwt(user.token)[0].get("alg")
    try:  # the signature alone: the claims are other tests' business
        jwt.PyJWS().decode(user.token, api.secret, algorithms=[alg] if alg in HMAC else ["HS256"])
    except jwt.PyJWTError as exc:
        raise Mismatch(
            "JWT signature",
            expected="made with the SECRET_KEY environment variable",
            actual=f"an {alg} token that does not verify with it ({exc})",
        ) from None


@TOKEN
@pytest.mark.critical("tokens must expire (an exp claim)")
def test_token_expires(api):
    """The access token must carry an exp claim: a token that never expires opens the account forever once it leaks."""
    user = api.shared("owner")  # its steps: register a user, log in
    with api.step("read the access token as a JWT"):
        claims = _read_jwt(user.token)[1]
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise Mismatch("JWT claim exp", expected="an expiry time (a number)", actual=claims)


@TOKEN
@pytest.mark.parametrize(
    "form",
    [
        pytest.param({"username": "someone@example.com"}, id="no-password"),
        pytest.param({"password": "long-enough-1"}, id="no-username"),
        pytest.param({}, id="empty-form"),
    ],
)
def test_token_missing_fields_is_422(client, form):
    """POST /token without username or password must answer 422."""
    r = client.post("/token", data=form)
    expect_status(r, 422)


@TOKEN
def test_token_json_instead_of_form_is_422(client, api):
    """POST /token takes a form, not JSON: a JSON body has no form fields and must answer 422."""
    user = api.shared("owner", login=False)
    r = client.post("/token", json={"username": user.email, "password": user.password})
    expect_status(r, 422)


@TOKEN
@pytest.mark.parametrize("field", ["username", "password"])
def test_token_nul_character_is_422(client, api, field):
    """A form field containing NUL (\\u0000) must answer 422, never 500."""
    form = {"username": api.email(), "password": api.PASSWORD}
    form[field] = form[field][:3] + "\u0000" + form[field][3:]
    r = client.post("/token", data=form)
    expect_status(r, 422)


# users-me -------------------------------------------------------------------------------------------
@ME
def test_me_returns_the_caller(client, api):
    """GET /users/me with a valid bearer token must answer 200 with the caller's UserOut."""
    user = api.shared("owner")
    r = client.get("/users/me", headers=user.headers)
    expect_status(r, 200)
    api.expect_user_out(r, email=user.email, user_id=user.id)


@ME
def test_me_without_token_is_401(client, api):
    """GET /users/me without Authorization must answer 401 {"detail": ...} with WWW-Authenticate: Bearer."""
    r = client.get("/users/me")
    expect_status(r, 401)
    api.expect_detail(r)
    api.expect_challenge(r, "Bearer")


@ME
def test_me_with_basic_credentials_is_401(client, api):
    """GET /users/me is a bearer route: Basic credentials must answer 401 with WWW-Authenticate: Bearer."""
    user = api.shared("owner", login=False)
    r = client.get("/users/me", headers=api.basic(user.email, user.password))
    expect_status(r, 401)
    api.expect_challenge(r, "Bearer")


@ME
@pytest.mark.critical("GET /users/me must refuse a request without a valid token")
def test_me_refuses_a_missing_or_invalid_token(client, api):
    """GET /users/me, which answers the caller with a valid token, must refuse a request without a token or with one that is not a token."""
    user = api.shared("owner")
    cases = {
        "no Authorization header": {},
        "an empty bearer token": {"Authorization": "Bearer"},
        "a token that is not a JWT": api.bearer("not-a-token"),
    }
    for case, headers in cases.items():  # refusals first (see test_forged_tokens_are_refused)
        api.expect_refused(client.get("/users/me", headers=headers), case)
    with api.step("call GET /users/me with a valid token"):
        expect_status(client.get("/users/me", headers=user.headers), 200)


@ME
def test_me_with_empty_bearer_is_401(client, api):
    """An Authorization header "Bearer" with no token must answer 401 with WWW-Authenticate: Bearer."""
    r = client.get("/users/me", headers={"Authorization": "Bearer"})
    expect_status(r, 401)
    api.expect_challenge(r, "Bearer")


# basic-auth -----------------------------------------------------------------------------------------
@BASIC
def test_basic_returns_the_caller(client, api):
    """GET /users/me/basic with the right e-mail:password must answer 200 with the caller's UserOut."""
    user = api.shared("owner", login=False)
    r = client.get("/users/me/basic", headers=api.basic(user.email, user.password))
    expect_status(r, 200)
    api.expect_user_out(r, email=user.email, user_id=user.id)


@BASIC
def test_basic_wrong_password_is_401(client, api):
    """A wrong password on GET /users/me/basic must answer 401 with WWW-Authenticate: Basic."""
    user = api.shared("owner", login=False)
    r = client.get("/users/me/basic", headers=api.basic(user.email, "wrong-password-1"))
    expect_status(r, 401)
    api.expect_detail(r)
    api.expect_challenge(r, "Basic")


@BASIC
def test_basic_unknown_email_is_401(client, api):
    """An unknown e-mail on GET /users/me/basic must answer 401 with WWW-Authenticate: Basic."""
    r = client.get("/users/me/basic", headers=api.basic(api.email(), api.PASSWORD))
    expect_status(r, 401)
    api.expect_challenge(r, "Basic")


@BASIC
def test_basic_without_credentials_is_401(client, api):
    """GET /users/me/basic without credentials must answer 401 with WWW-Authenticate: Basic."""
    r = client.get("/users/me/basic")
    expect_status(r, 401)
    api.expect_detail(r)
    api.expect_challenge(r, "Basic")


@BASIC
@pytest.mark.critical(
    "GET /users/me/basic must refuse a wrong password, an unknown e-mail and no credentials"
)
def test_basic_refuses_wrong_or_missing_credentials(client, api):
    """GET /users/me/basic, which answers the caller with the right e-mail:password, must refuse a wrong password, an unknown e-mail and a request without credentials."""
    user = api.shared("owner", login=False)
    cases = {
        "a wrong password": api.basic(user.email, "wrong-password-1"),
        "an unknown e-mail": api.basic(api.email(), api.PASSWORD),
        "no credentials": {},
    }
    for case, headers in cases.items():  # refusals first (see test_forged_tokens_are_refused)
        api.expect_refused(client.get("/users/me/basic", headers=headers), case)
    with api.step("call GET /users/me/basic with the right credentials"):
        expect_status(
            client.get("/users/me/basic", headers=api.basic(user.email, user.password)), 200
        )


@BASIC
def test_basic_with_bearer_token_is_401(client, api):
    """GET /users/me/basic takes HTTP Basic only: a bearer token must answer 401 with WWW-Authenticate: Basic."""
    user = api.shared("owner")
    r = client.get("/users/me/basic", headers=user.headers)
    expect_status(r, 401)
    api.expect_challenge(r, "Basic")


@BASIC
def test_basic_nul_in_username_is_401(client, api):
    """Basic credentials containing NUL name no user: 401 with WWW-Authenticate: Basic, never 500."""
    r = client.get("/users/me/basic", headers=api.basic("nul\u0000user@example.com", api.PASSWORD))
    expect_status(r, 401)
    api.expect_challenge(r, "Basic")
