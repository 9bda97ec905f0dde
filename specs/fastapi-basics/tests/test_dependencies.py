"""Operations 13-16: GET /items/ (response model), GET /common/, GET /query_or_cookie, GET /protected/."""

import pytest

from grader.testing import Mismatch, expect_json, expect_status

RESPONSE_MODEL = pytest.mark.rubric("response-model")
COMMON = pytest.mark.rubric("common-params")
QUERY_OR_COOKIE = pytest.mark.rubric("query-or-cookie")
PROTECTED = pytest.mark.rubric("protected")
# the values the FastAPI lesson hard-codes: an app that still takes them ignores its environment
LESSON_TOKEN, LESSON_KEY = "fake-super-secret-token", "fake-super-secret-key"

ITEMS = [
    {"name": "Portal Gun", "description": None, "price": 42.0, "tax": None},
    {"name": "Plumbus", "description": None, "price": 32.0, "tax": None},
]


# response-model -------------------------------------------------------------------------------------
def _items(client):
    r = client.get("/items/")
    expect_status(r, 200)
    body = expect_json(r)
    if not isinstance(body, list):
        raise Mismatch("GET /items/ body", expected="a JSON list of items", actual=body)
    return body


@RESPONSE_MODEL
def test_items_list_is_exact(client, api):
    """GET /items/ must answer exactly the two items Portal Gun (42.0) and Plumbus (32.0), nulls included."""
    api.ok(client.get("/items/"), ITEMS, exact=True)


@RESPONSE_MODEL
def test_items_list_has_two_items_in_order(client):
    """GET /items/ must answer two items: Portal Gun first, then Plumbus."""
    body = _items(client)
    names = [i.get("name") if isinstance(i, dict) else i for i in body]
    if names != ["Portal Gun", "Plumbus"]:
        raise Mismatch("GET /items/ names", expected=["Portal Gun", "Plumbus"], actual=names)


@RESPONSE_MODEL
def test_items_list_prices(client, api):
    """GET /items/ must answer the prices 42.0 (Portal Gun) and 32.0 (Plumbus) as numbers."""
    body = _items(client)
    prices = [i.get("price") if isinstance(i, dict) else i for i in body]
    if not api.matches([42.0, 32.0], prices):
        raise Mismatch("GET /items/ prices", expected=[42.0, 32.0], actual=prices)


@RESPONSE_MODEL
@pytest.mark.parametrize("field", ["description", "tax"])
def test_items_list_null_fields_are_present(client, field):
    """GET /items/ must go through a response model: every item has the field, null, even when the handler leaves it out."""
    body = _items(client)
    for item in body:
        if not isinstance(item, dict) or field not in item or item[field] is not None:
            raise Mismatch(
                f"GET /items/ items' {field}",
                expected=f'"{field}": null in every item',
                actual=body,
            )


# common-params -------------------------------------------------------------------------------------
@COMMON
def test_common_defaults(client, api):
    """GET /common/ without parameters must answer {"q": null, "skip": 0, "limit": 100}."""
    api.ok(client.get("/common/"), {"q": None, "skip": 0, "limit": 100})


@COMMON
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"q": "portal"}, {"q": "portal", "skip": 0, "limit": 100}, id="q-only"),
        pytest.param({"skip": 5}, {"q": None, "skip": 5, "limit": 100}, id="skip-only"),
        pytest.param({"limit": 10}, {"q": None, "skip": 0, "limit": 10}, id="limit-only"),
        pytest.param(
            {"q": "gun", "skip": 20, "limit": 3},
            {"q": "gun", "skip": 20, "limit": 3},
            id="all-three",
        ),
    ],
)
def test_common_echoes_the_parameters(client, api, params, expected):
    """GET /common/ must echo q, skip and limit, with q null, skip 0 and limit 100 for those left out."""
    api.ok(client.get("/common/", params=params), expected)


@COMMON
@pytest.mark.parametrize(
    ("params", "name"),
    [
        pytest.param({"skip": "abc"}, "skip", id="skip-abc"),
        pytest.param({"limit": "1.5"}, "limit", id="limit-1.5"),
        pytest.param({"q": "x", "limit": "many"}, "limit", id="limit-many"),
    ],
)
def test_common_non_integer_is_422(client, api, params, name):
    """GET /common/ with a skip or limit that is not an integer must answer 422 naming it."""
    api.invalid(client.get("/common/", params=params), "query", name)


# query-or-cookie -----------------------------------------------------------------------------------
# The cookie goes in a per-request Cookie header (the shared client keeps no cookie jar state).
@QUERY_OR_COOKIE
@pytest.mark.parametrize(
    ("params", "cookie", "expected"),
    [
        pytest.param({"q": "from-query"}, None, "from-query", id="query-only"),
        pytest.param({}, "from-cookie", "from-cookie", id="cookie-only"),
        pytest.param({"q": "from-query"}, "from-cookie", "from-query", id="query-wins-over-cookie"),
        pytest.param(
            {"q": ""}, "from-cookie", "from-cookie", id="empty-query-falls-back-to-cookie"
        ),
        pytest.param({}, None, None, id="neither-is-null"),
        pytest.param({"q": ""}, None, None, id="empty-query-no-cookie-is-null"),
    ],
)
def test_query_or_cookie(client, api, params, cookie, expected):
    """GET /query_or_cookie must answer the query q if it is not empty, else the cookie last_query, else null."""
    headers = {"Cookie": f"last_query={cookie}"} if cookie is not None else {}
    r = client.get("/query_or_cookie", params=params, headers=headers)
    api.ok(r, {"q_or_cookie": expected})


@QUERY_OR_COOKIE
def test_query_or_cookie_among_other_cookies(client, api):
    """GET /query_or_cookie must find the cookie last_query among other cookies."""
    r = client.get(
        "/query_or_cookie", headers={"Cookie": "theme=dark; last_query=plumbus; lang=en"}
    )
    api.ok(r, {"q_or_cookie": "plumbus"})


# protected ----------------------------------------------------------------------------------------------
@PROTECTED
def test_protected_with_the_right_headers(client, api):
    """GET /protected/ with the right X-Token and X-Key must answer 200 [{"item": "Foo"}, {"item": "Bar"}]."""
    headers = {"X-Token": api.env["X_TOKEN"], "X-Key": api.env["X_KEY"]}
    api.ok(client.get("/protected/", headers=headers), [{"item": "Foo"}, {"item": "Bar"}])


@PROTECTED
@pytest.mark.critical(
    "GET /protected/ must open with X_TOKEN and X_KEY from the environment only, never values in the code"
)
def test_protected_opens_only_with_the_environments_values(client, api):
    """GET /protected/ must let in only the X_TOKEN and X_KEY the app was started with (new random values each run): a wrong value, or the lesson's "fake-super-secret-token" / "fake-super-secret-key", must be refused."""
    token, key = api.env["X_TOKEN"], api.env["X_KEY"]
    cases = {
        "the lesson's X-Token": {"X-Token": LESSON_TOKEN, "X-Key": key},
        "the lesson's X-Key": {"X-Token": token, "X-Key": LESSON_KEY},
        "the lesson's X-Token and X-Key": {"X-Token": LESSON_TOKEN, "X-Key": LESSON_KEY},
        "a wrong X-Token": {"X-Token": "wrong-token", "X-Key": key},
        "a wrong X-Key": {"X-Token": token, "X-Key": "wrong-key"},
    }
    for case, headers in cases.items():
        api.expect_refused(client.get("/protected/", headers=headers), case)
    # refusing everything shows no hole, and no working route: then nothing was checked
    with api.step("open GET /protected/ with the right X-Token and X-Key"):
        api.expect_success(client.get("/protected/", headers={"X-Token": token, "X-Key": key}))


@PROTECTED
def test_protected_without_headers_is_422(client, api):
    """GET /protected/ without X-Token and X-Key must answer 422 (required headers), not 400."""
    api.invalid(client.get("/protected/"), "header", "x-token")


@PROTECTED
def test_protected_without_token_is_422(client, api):
    """GET /protected/ with the right X-Key but no X-Token must answer 422 naming the header x-token."""
    api.invalid(client.get("/protected/", headers={"X-Key": api.env["X_KEY"]}), "header", "x-token")


@PROTECTED
def test_protected_without_key_is_422(client, api):
    """GET /protected/ with the right X-Token but no X-Key must answer 422 naming the header x-key."""
    api.invalid(
        client.get("/protected/", headers={"X-Token": api.env["X_TOKEN"]}), "header", "x-key"
    )
