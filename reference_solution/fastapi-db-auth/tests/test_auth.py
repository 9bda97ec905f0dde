import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import SECRET_KEY, User, unique_email


def basic(username: str, password: str) -> dict[str, str]:
    raw = f"{username}:{password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(payload: dict[str, Any], key: str = SECRET_KEY, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=algorithm)


def in_minutes(minutes: float) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


# --- POST /token ------------------------------------------------------------------------------


def test_token(client: httpx.Client, user: User) -> None:
    response = client.post("/token", data={"username": user.email, "password": user.password})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    claims = jwt.decode(body["access_token"], SECRET_KEY, algorithms=["HS256"])
    assert claims["sub"] == user.email
    lifetime = claims["exp"] - datetime.now(UTC).timestamp()
    assert 29 * 60 < lifetime <= 30 * 60 + 5
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"


@pytest.mark.parametrize(
    "username, password",
    [
        ("{email}", "wrong password"),
        ("nobody@example.com", "{password}"),
    ],
)
def test_token_wrong_credentials(
    client: httpx.Client, user: User, username: str, password: str
) -> None:
    data = {
        "username": username.format(email=user.email),
        "password": password.format(password=user.password),
    }
    response = client.post("/token", data=data)
    assert response.status_code == 401, response.text
    assert response.json() == {"detail": "Incorrect username or password"}
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "username, password",
    [
        ("nul\u0000@example.com", "{password}"),
        ("{email}\u0000", "{password}"),
        ("{email}", "{password}\u0000"),
    ],
)
def test_token_nul_is_422(client: httpx.Client, user: User, username: str, password: str) -> None:
    data = {
        "username": username.format(email=user.email),
        "password": password.format(password=user.password),
    }
    response = client.post("/token", data=data)
    assert response.status_code == 422, response.text
    assert "detail" in response.json()


def test_token_missing_fields(client: httpx.Client) -> None:
    assert client.post("/token", data={"username": "a@example.com"}).status_code == 422
    assert client.post("/token").status_code == 422
    # FastAPI treats an empty form field as a missing one
    assert client.post("/token", data={"username": "", "password": "x" * 8}).status_code == 422
    assert (
        client.post("/token", data={"username": "a@example.com", "password": ""}).status_code == 422
    )


def test_token_login_with_other_domain_case(client: httpx.Client, make_user: Any) -> None:
    user = make_user(email=unique_email().replace("example.com", "Example.COM"))
    response = client.post("/token", data={"username": user.email, "password": user.password})
    assert response.status_code == 200


# --- GET /users/me (Bearer) --------------------------------------------------------------------


def test_me(client: httpx.Client, user: User) -> None:
    response = client.get("/users/me", headers=user.auth)
    assert response.status_code == 200
    assert response.json() == user.data


def unsigned(payload: dict[str, Any]) -> str:
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(payload).encode())}."


BAD_TOKENS = {
    "malformed": lambda email: "not-a-jwt",
    "garbage segments": lambda email: "aaa.bbb.ccc",
    "wrong key": lambda email: forge(
        {"sub": email, "exp": in_minutes(5)}, key="wrong-key-" + "x" * 32
    ),
    "alg none": lambda email: unsigned({"sub": email, "exp": int(in_minutes(5).timestamp())}),
    "alg none with signature": lambda email: unsigned({"sub": email}) + "c2ln",
    "HS512": lambda email: forge({"sub": email, "exp": in_minutes(5)}, algorithm="HS512"),
    "expired": lambda email: forge({"sub": email, "exp": in_minutes(-1)}),
    "no exp": lambda email: forge({"sub": email}),
    "no sub": lambda email: forge({"exp": in_minutes(5)}),
    "unknown sub": lambda email: forge({"sub": "ghost@example.com", "exp": in_minutes(5)}),
    "sub not a string": lambda email: jwt.encode(
        {"sub": 42, "exp": in_minutes(5)}, SECRET_KEY, algorithm="HS256"
    ),
    "sub with NUL": lambda email: forge({"sub": email + "\u0000", "exp": in_minutes(5)}),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
@pytest.mark.parametrize(
    "method, path", [("GET", "/users/me"), ("GET", "/users/me/items/"), ("DELETE", "/items/1")]
)
def test_bearer_rejects(
    client: httpx.Client, user: User, case: str, method: str, path: str
) -> None:
    token = BAD_TOKENS[case](user.email)
    response = client.request(method, path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "detail" in response.json()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Token abc"},
        {"Authorization": "Basic abc"},
    ],
)
def test_bearer_missing(client: httpx.Client, headers: dict[str, str]) -> None:
    response = client.get("/users/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "detail" in response.json()


def test_forged_token_with_the_right_key_works(client: httpx.Client, user: User) -> None:
    token = forge({"sub": user.email, "exp": in_minutes(5)})
    response = client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


# --- GET /users/me/basic -----------------------------------------------------------------------


def test_basic(client: httpx.Client, user: User) -> None:
    response = client.get("/users/me/basic", headers=basic(user.email, user.password))
    assert response.status_code == 200
    assert response.json() == user.data


def test_basic_unicode_email(client: httpx.Client, make_user: Any) -> None:
    user = make_user(email=f"ü-{unique_email()}")
    response = client.get("/users/me/basic", headers=basic(user.email, user.password))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic"},
        {"Authorization": "Basic !!!not-base64!!!"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()},
        {"Authorization": "Bearer abc"},
        basic("nobody@example.com", "whatever-password"),
        basic("nul\u0000@example.com", "whatever-password"),
    ],
)
def test_basic_rejects(client: httpx.Client, headers: dict[str, str]) -> None:
    response = client.get("/users/me/basic", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Basic"
    assert "detail" in response.json()


def test_basic_wrong_password(client: httpx.Client, user: User) -> None:
    response = client.get("/users/me/basic", headers=basic(user.email, "wrong password"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Basic"
