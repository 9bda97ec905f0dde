"""Rows 2-4: POST /users/, GET /users/, GET /users/{user_id}."""

import pytest

from grader.testing import Mismatch, expect_equal, expect_json, expect_status

CREATE = pytest.mark.rubric("users-create")
VALIDATION = pytest.mark.rubric("users-validation")
READ = pytest.mark.rubric("users-read")


# users-create ----------------------------------------------------------------------------------
@CREATE
def test_create_user_returns_201_user_out(client, api):
    """POST /users/ must answer 201 with {id, email, is_active} and never the password."""
    email = api.email()
    r = client.post("/users/", json={"email": email, "password": api.PASSWORD})
    expect_status(r, 201)
    api.expect_user_out(r, email=email)


@CREATE
def test_created_user_can_be_read_back(client, api):
    """A created user must be returned by GET /users/{user_id} with the same id and e-mail."""
    user = api.shared("owner", login=False)
    r = client.get(f"/users/{user.id}")
    expect_status(r, 200)
    api.expect_user_out(r, email=user.email, user_id=user.id)


@CREATE
def test_users_get_distinct_ids(api):
    """Each new user must get its own id."""
    a, b = api.shared("owner", login=False), api.shared("other", login=False)
    if a.id == b.id:
        raise Mismatch("POST /users/ ids", expected="two different ids", actual=f"{a.id} twice")


@CREATE
def test_duplicate_email_is_400(client, api):
    """Registering an e-mail twice must answer 400 {"detail": "Email already registered"}."""
    user = api.register(login=False)
    r = client.post("/users/", json={"email": user.email, "password": "another-password-1"})
    expect_status(r, 400)
    api.expect_detail(r, "Email already registered")


@CREATE
@pytest.mark.critical("no user response may hold the password or its hash")
def test_no_password_in_any_user_response(client, api):
    """No answer about a user (POST /users/, GET /users/{user_id}, GET /users/, POST /token, GET /users/me, GET /users/me/basic) may contain a password or hashed_password property."""

    def check(r):  # a success only: a 422's echo of the request's input is no leak
        if 200 <= r.status_code < 300:
            api.expect_no_secrets(r)
        return r

    email = api.email()
    created = check(client.post("/users/", json={"email": email, "password": api.PASSWORD}))
    with api.step("register a user"):
        expect_status(created, 200, 201)  # each route's own status is other tests' business
        user_id = api.expect_user_out(created, email=email, secrets=False)["id"]
    check(client.get(f"/users/{user_id}"))
    check(client.get("/users/", params={"limit": 100}))
    check(client.get("/users/me/basic", headers=api.basic(email, api.PASSWORD)))
    login = check(client.post("/token", data={"username": email, "password": api.PASSWORD}))
    with api.step("log in"):
        expect_status(login, 200)
        body = expect_json(login)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise Mismatch(
                "POST /token body", expected='{"access_token": "<jwt>", ...}', actual=body
            )
    check(client.get("/users/me", headers=api.bearer(token)))


# users-validation -------------------------------------------------------------------------------
@VALIDATION
@pytest.mark.parametrize(
    "email",
    [
        "not-an-email",
        "missing-domain@",
        "@missing-local.com",
        "two@@example.com",
        "spaces in@example.com",
        "",
    ],
)
def test_invalid_email_is_422(client, api, email):
    """An e-mail that pydantic.EmailStr rejects must answer 422."""
    r = client.post("/users/", json={"email": email, "password": api.PASSWORD})
    expect_status(r, 422)
    api.expect_detail(r)


@VALIDATION
@pytest.mark.parametrize("length", [7, 129])
def test_password_length_out_of_bounds_is_422(client, api, length):
    """A password shorter than 8 or longer than 128 characters must answer 422."""
    r = client.post("/users/", json={"email": api.email(), "password": "p" * length})
    expect_status(r, 422)
    api.expect_detail(r)


@VALIDATION
@pytest.mark.parametrize("length", [8, 128])
def test_password_length_bounds_are_accepted(client, api, length):
    """Passwords of exactly 8 and exactly 128 characters must be accepted (201)."""
    r = client.post("/users/", json={"email": api.email(), "password": "p" * length})
    expect_status(r, 201)


@VALIDATION
@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"password": "long-enough-1"}, id="no-email"),
        pytest.param({"email": "someone@example.com"}, id="no-password"),
        pytest.param({}, id="empty-object"),
        pytest.param([], id="a-list"),
        pytest.param({"email": 12345, "password": "long-enough-1"}, id="email-number"),
        pytest.param(
            {"email": "someone@example.com", "password": 1234567890}, id="password-number"
        ),
        pytest.param({"email": None, "password": "long-enough-1"}, id="email-null"),
    ],
)
def test_missing_or_wrongly_typed_fields_are_422(client, body):
    """Missing fields and wrongly typed values in POST /users/ must answer 422."""
    r = client.post("/users/", json=body)
    expect_status(r, 422)


@VALIDATION
@pytest.mark.parametrize("field", ["email", "password"])
def test_nul_character_is_422(client, api, field):
    """A string containing NUL (\\u0000) must answer 422, never 500 (Postgres cannot store it)."""
    body = {"email": api.email(), "password": api.PASSWORD}
    body[field] = body[field][:3] + "\u0000" + body[field][3:]
    r = client.post("/users/", json=body)
    expect_status(r, 422)


@VALIDATION
def test_malformed_json_is_422(client, api):
    """A body that is not valid JSON must answer 422 with a {"detail": ...} body."""
    r = client.post(
        "/users/",
        content=b'{"email": "x@example.com", "password": ',
        headers={"Content-Type": "application/json"},
    )
    expect_status(r, 422)
    api.expect_detail(r)


@VALIDATION
def test_rejected_user_is_not_stored(client, api):
    """A user rejected with 422 must not be stored: the same e-mail can then register (201)."""
    email = api.email()
    r = client.post("/users/", json={"email": email, "password": "short"})
    expect_status(r, 422)
    r = client.post("/users/", json={"email": email, "password": api.PASSWORD})
    expect_status(r, 201)


# users-read -----------------------------------------------------------------------------------------
@READ
def test_list_users_has_new_users_in_id_order(api):
    """GET /users/ must list every user, ordered by id ascending."""
    created = [api.shared(name, login=False) for name in ("owner", "other", "itemless")]
    rows = api.all_rows("/users/")
    ids = api.expect_ids_ascending(rows, "GET /users/ ids")
    for user in created:
        if user.id not in ids:
            raise Mismatch(
                "GET /users/", expected=f"user {user.id} in the list", actual=f"ids {ids[-10:]}"
            )
    for row in rows:
        if row.get("id") == created[0].id:
            expect_equal(row.get("email"), created[0].email, "GET /users/ row email")


@READ
@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"skip": -1}, id="skip-negative"),
        pytest.param({"limit": 0}, id="limit-0"),
        pytest.param({"limit": 101}, id="limit-101"),
        pytest.param({"limit": -5}, id="limit-negative"),
        pytest.param({"skip": "abc"}, id="skip-not-int"),
        pytest.param({"limit": "ten"}, id="limit-not-int"),
    ],
)
def test_list_users_pagination_bounds_are_422(client, params):
    """GET /users/ must answer 422 when skip < 0, limit < 1, limit > 100 or they are not integers."""
    r = client.get("/users/", params=params)
    expect_status(r, 422)


@READ
def test_list_users_limit_1_and_100(client, api):
    """GET /users/?limit=1 must return exactly one user and limit=100 must be accepted."""
    api.shared("owner", login=False)
    r = client.get("/users/", params={"limit": 1})
    expect_status(r, 200)
    expect_equal(len(expect_json(r)), 1, "GET /users/?limit=1 number of rows")
    r = client.get("/users/", params={"limit": 100})
    expect_status(r, 200)


@READ
def test_list_users_skip(client, api):
    """GET /users/?skip=1&limit=2 must return the 2nd and 3rd users of the full list."""
    for name in ("owner", "other", "itemless"):
        api.shared(name, login=False)
    r = client.get("/users/", params={"skip": 0, "limit": 100})
    expect_status(r, 200)
    ids = [row["id"] for row in expect_json(r)]
    r = client.get("/users/", params={"skip": 1, "limit": 2})
    expect_status(r, 200)
    expect_equal(
        [row.get("id") for row in expect_json(r)], ids[1:3], "GET /users/?skip=1&limit=2 ids"
    )


@READ
def test_get_missing_user_is_404(client, api, missing_id):
    """GET /users/{user_id} for an id with no user must answer 404 {"detail": "User not found"}."""
    r = client.get(f"/users/{missing_id}")
    expect_status(r, 404)
    api.expect_detail(r, "User not found")


@READ
@pytest.mark.parametrize("user_id", ["abc", "1.5"])
def test_get_user_with_non_integer_id_is_422(client, user_id):
    """GET /users/{user_id} with an id that is not an integer must answer 422."""
    r = client.get(f"/users/{user_id}")
    expect_status(r, 422)


@READ
@pytest.mark.parametrize("user_id", [0, -1, 2**31, 2**63])
def test_get_user_with_impossible_id_is_not_an_error(client, user_id):
    """An id no user can have (0, negative, too big for the database) must answer 404 (or 422), never 500."""
    r = client.get(f"/users/{user_id}")
    expect_status(r, 404, 422)
