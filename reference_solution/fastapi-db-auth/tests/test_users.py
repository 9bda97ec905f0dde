import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import TEST_DATABASE_URL, User, unique_email


def test_create_user(client: httpx.Client) -> None:
    email = unique_email()
    response = client.post("/users/", json={"email": email, "password": "s3cret-password"})
    assert response.status_code == 201
    body = response.json()
    assert body == {"id": body["id"], "email": email, "is_active": True}
    assert isinstance(body["id"], int)
    assert "password" not in response.text


def test_password_is_stored_as_argon2_hash(user: User) -> None:
    async def fetch() -> str:
        connection = await asyncpg.connect(TEST_DATABASE_URL)
        try:
            return await connection.fetchval(
                "SELECT hashed_password FROM users WHERE id = $1", user.id
            )
        finally:
            await connection.close()

    hashed = asyncio.run(fetch())
    assert hashed.startswith("$argon2")
    assert user.password not in hashed


def test_duplicate_email(client: httpx.Client, user: User) -> None:
    response = client.post("/users/", json={"email": user.email, "password": "another-password"})
    assert response.status_code == 400
    assert response.json() == {"detail": "Email already registered"}


def test_duplicate_email_with_other_domain_case(client: httpx.Client, user: User) -> None:
    local, domain = user.email.split("@")
    response = client.post(
        "/users/", json={"email": f"{local}@{domain.upper()}", "password": "another-password"}
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "not-an-email", "password": "long enough"},
        {"email": unique_email(), "password": "short"},
        {"email": unique_email(), "password": "1234567"},
        {"email": unique_email(), "password": "x" * 129},
        {"email": unique_email()},
        {"password": "long enough"},
        {},
        {"email": 42, "password": "long enough"},
        {"email": unique_email(), "password": 12345678},
        {"email": unique_email(), "password": None},
        {"email": "nul\u0000@example.com", "password": "long enough"},
        {"email": unique_email(), "password": "long\u0000enough"},
        [],
        "a string",
    ],
)
def test_create_user_invalid(client: httpx.Client, payload: Any) -> None:
    response = client.post("/users/", json=payload)
    assert response.status_code == 422, response.text
    assert "detail" in response.json()


def test_create_user_malformed_json(client: httpx.Client) -> None:
    response = client.post(
        "/users/", content=b'{"email": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422


@pytest.mark.parametrize("length", [8, 128])
def test_password_length_bounds_accepted(client: httpx.Client, length: int) -> None:
    response = client.post("/users/", json={"email": unique_email(), "password": "p" * length})
    assert response.status_code == 201


def test_list_users_ordered_and_paginated(client: httpx.Client, make_user: Any) -> None:
    created = [make_user().id for _ in range(3)]
    users = client.get("/users/", params={"limit": 100}).json()
    ids = [u["id"] for u in users]
    assert ids == sorted(ids)
    assert all(set(u) == {"id", "email", "is_active"} for u in users)
    position = ids.index(created[0])
    page = client.get("/users/", params={"skip": position, "limit": 2}).json()
    assert [u["id"] for u in page] == created[:2]
    assert client.get("/users/", params={"skip": 10**30}).json() == []


@pytest.mark.parametrize(
    "params", [{"skip": -1}, {"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"skip": "x"}]
)
def test_list_users_bad_params(client: httpx.Client, params: dict[str, Any]) -> None:
    assert client.get("/users/", params=params).status_code == 422


def test_list_users_limit_bounds(client: httpx.Client) -> None:
    assert client.get("/users/", params={"limit": 1}).status_code == 200
    assert client.get("/users/", params={"limit": 100}).status_code == 200
    assert client.get("/users/", params={"skip": 0}).status_code == 200


def test_get_user(client: httpx.Client, user: User) -> None:
    response = client.get(f"/users/{user.id}")
    assert response.status_code == 200
    assert response.json() == {"id": user.id, "email": user.email, "is_active": True}


@pytest.mark.parametrize("user_id", ["999999999", "0", "-1", str(10**20)])
def test_get_user_not_found(client: httpx.Client, user_id: str) -> None:
    response = client.get(f"/users/{user_id}")
    assert response.status_code == 404
    assert response.json() == {"detail": "User not found"}


@pytest.mark.parametrize("user_id", ["abc", "1.5"])
def test_get_user_bad_id(client: httpx.Client, user_id: str) -> None:
    assert client.get(f"/users/{user_id}").status_code == 422
