"""Tokens: every forged or invalid bearer token gets 401 with WWW-Authenticate: Bearer.

One accepted forged, unsigned, tampered or expired token zeroes the item (the critical test)."""

import base64
import json

import pytest

from grader.testing import expect_equal, expect_json, expect_status

pytestmark = pytest.mark.rubric("forged-jwt")


def _tampered(token: str, claims: dict) -> str:
    """The token's header and signature around a different payload."""
    header, _payload, signature = token.split(".")
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}.{signature}"


def _token(api, kind):
    user = api.shared("owner")
    exp = api.future()
    if kind == "wrong-key":
        return api.forge({"sub": user.email, "exp": exp}, key="not-the-secret-key-0123456789abcdef")
    if kind == "alg-none":
        return api.forge_alg_none({"sub": user.email, "exp": exp})
    if kind == "expired":
        return api.forge({"sub": user.email, "exp": api.future(-3600)})
    if kind == "unknown-sub":
        return api.forge({"sub": f"nobody-{api.email()}", "exp": exp})
    if kind == "no-sub":
        return api.forge({"exp": exp})
    if kind == "nul-in-sub":
        return api.forge({"sub": "nul\u0000" + user.email, "exp": exp})
    if kind == "tampered-payload":
        other = api.shared("other", login=False)
        return _tampered(user.token, {"sub": other.email, "exp": exp})
    if kind == "garbage":
        return "this-is-not-a-jwt"
    raise AssertionError(kind)


KINDS = [
    "wrong-key",
    "alg-none",
    "expired",
    "unknown-sub",
    "no-sub",
    "nul-in-sub",
    "tampered-payload",
    "garbage",
]


@pytest.mark.parametrize("kind", KINDS)
def test_forged_token_is_401_on_users_me(client, api, kind):
    """GET /users/me must answer 401 with WWW-Authenticate: Bearer for a token that is forged, expired or names no user."""
    r = client.get("/users/me", headers=api.bearer(_token(api, kind)))
    expect_status(r, 401)
    api.expect_detail(r)
    api.expect_challenge(r, "Bearer")


@pytest.mark.critical("forged, unsigned, tampered and expired tokens must be refused")
def test_forged_tokens_are_refused(client, api):
    """GET /users/me, which answers the caller with a valid token, must refuse a token signed with another key, an unsigned one (alg "none"), one whose payload was changed and an expired one."""
    user = api.shared("owner")
    api.shared("other", login=False)  # the tampered token names this user
    # refusals first: an app cannot dodge them by failing the valid request on purpose
    for kind in ("wrong-key", "alg-none", "tampered-payload", "expired"):
        api.expect_refused(
            client.get("/users/me", headers=api.bearer(_token(api, kind))), f"a {kind} token"
        )
    # then whether "all refused" proves anything: the route lets a valid token in
    with api.step("call GET /users/me with a valid token"):
        expect_status(client.get("/users/me", headers=user.headers), 200)


def test_alg_none_token_cannot_create_items(client, api):
    """POST /users/{user_id}/items/ with an alg "none" token must answer 401 and create nothing."""
    user = api.itemless()
    token = api.forge_alg_none({"sub": user.email, "exp": api.future()})
    r = client.post(f"/users/{user.id}/items/", json={"title": "forged"}, headers=api.bearer(token))
    expect_status(r, 401)
    api.expect_challenge(r, "Bearer")
    r = client.get("/users/me/items/", headers=user.headers)
    expect_status(r, 200)
    expect_equal(expect_json(r), [], "GET /users/me/items/ after the forged request")


def test_expired_token_cannot_delete_items(client, api):
    """DELETE /items/{item_id} with an expired token must answer 401 and keep the item."""
    user = api.shared("owner")
    item = api.create_item(user)
    token = api.forge({"sub": user.email, "exp": api.future(-3600)})
    r = client.delete(f"/items/{item['id']}", headers=api.bearer(token))
    expect_status(r, 401)
    api.expect_challenge(r, "Bearer")
    r = client.get(f"/items/{item['id']}")
    expect_status(r, 200)


def test_wrong_key_token_cannot_list_own_items(client, api):
    """GET /users/me/items/ with a token signed by another key must answer 401 with WWW-Authenticate: Bearer."""
    user = api.shared("owner")
    token = api.forge(
        {"sub": user.email, "exp": api.future()}, key="not-the-secret-key-0123456789abcdef"
    )
    r = client.get("/users/me/items/", headers=api.bearer(token))
    expect_status(r, 401)
    api.expect_challenge(r, "Bearer")
