from typing import Any

import httpx
import pytest

from tests.conftest import User

MISSING_USER = 999_999_999


def create_item(user: User, **payload: Any) -> dict[str, Any]:
    payload.setdefault("title", "An item")
    response = user.client.post(f"/users/{user.id}/items/", json=payload, headers=user.auth)
    assert response.status_code == 201, response.text
    return response.json()


# --- POST /users/{user_id}/items/ ---------------------------------------------------------------


def test_create_item(client: httpx.Client, user: User) -> None:
    response = client.post(
        f"/users/{user.id}/items/", json={"title": "Milk", "description": "2 l"}, headers=user.auth
    )
    assert response.status_code == 201
    body = response.json()
    assert body == {"id": body["id"], "title": "Milk", "description": "2 l", "owner_id": user.id}


def test_create_item_description_optional(user: User) -> None:
    assert create_item(user, title="x")["description"] is None
    assert create_item(user, title="y", description=None)["description"] is None
    assert create_item(user, title="t" * 200)["title"] == "t" * 200


def test_create_item_requires_token(client: httpx.Client, user: User) -> None:
    response = client.post(f"/users/{user.id}/items/", json={"title": "x"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"title": ""},
        {"title": "t" * 201},
        {"title": None},
        {"title": 5},
        {"title": "nul\u0000"},
        {"title": "ok", "description": "nul\u0000"},
        {"title": "ok", "description": 5},
        [],
    ],
)
def test_create_item_invalid(client: httpx.Client, user: User, payload: Any) -> None:
    response = client.post(f"/users/{user.id}/items/", json=payload, headers=user.auth)
    assert response.status_code == 422, response.text


def test_create_item_unknown_user(client: httpx.Client, user: User) -> None:
    response = client.post(f"/users/{MISSING_USER}/items/", json={"title": "x"}, headers=user.auth)
    assert response.status_code == 404
    assert response.json() == {"detail": "User not found"}


def test_create_item_for_someone_else(client: httpx.Client, user: User, other: User) -> None:
    response = client.post(f"/users/{other.id}/items/", json={"title": "x"}, headers=user.auth)
    assert response.status_code == 403
    assert response.json() == {"detail": "Not enough permissions"}


def test_create_item_check_order(client: httpx.Client, user: User, other: User) -> None:
    path = f"/users/{MISSING_USER}/items/"
    # 401 before 422
    assert client.post(path, json={"title": ""}).status_code == 401
    assert client.post("/users/abc/items/", json={"title": "x"}).status_code == 401
    # 422 before 404
    assert client.post(path, json={"title": ""}, headers=user.auth).status_code == 422
    assert (
        client.post("/users/abc/items/", json={"title": "x"}, headers=user.auth).status_code == 422
    )
    # 422 before 403
    other_path = f"/users/{other.id}/items/"
    assert client.post(other_path, json={}, headers=user.auth).status_code == 422


# --- GET /users/me/items/ -------------------------------------------------------------------


def test_my_items(client: httpx.Client, user: User, other: User) -> None:
    mine = [create_item(user, title=f"mine {i}")["id"] for i in range(3)]
    create_item(other, title="not mine")
    response = client.get("/users/me/items/", headers=user.auth)
    assert response.status_code == 200
    assert [item["id"] for item in response.json()] == mine
    assert all(item["owner_id"] == user.id for item in response.json())


def test_my_items_requires_token(client: httpx.Client) -> None:
    response = client.get("/users/me/items/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


# --- GET /items/, GET /items/{id} ----------------------------------------------------------------


def test_list_items(client: httpx.Client, user: User, other: User) -> None:
    created = [create_item(user)["id"], create_item(other)["id"], create_item(user)["id"]]
    items = client.get("/items/", params={"limit": 100}).json()
    ids = [item["id"] for item in items]
    assert ids == sorted(ids)
    position = ids.index(created[0])
    page = client.get("/items/", params={"skip": position, "limit": 3}).json()
    assert [item["id"] for item in page] == created
    assert all(set(item) == {"id", "title", "description", "owner_id"} for item in page)


@pytest.mark.parametrize("params", [{"skip": -1}, {"limit": 0}, {"limit": 101}, {"skip": "x"}])
def test_list_items_bad_params(client: httpx.Client, params: dict[str, Any]) -> None:
    assert client.get("/items/", params=params).status_code == 422


def test_get_item(client: httpx.Client, user: User) -> None:
    item = create_item(user, title="Thing", description="desc")
    response = client.get(f"/items/{item['id']}")
    assert response.status_code == 200
    assert response.json() == item


@pytest.mark.parametrize("item_id", ["999999999", "0", "-5", str(2**63)])
def test_get_item_not_found(client: httpx.Client, item_id: str) -> None:
    response = client.get(f"/items/{item_id}")
    assert response.status_code == 404
    assert response.json() == {"detail": "Item not found"}


def test_get_item_bad_id(client: httpx.Client) -> None:
    assert client.get("/items/abc").status_code == 422


# --- PATCH /items/{id} ------------------------------------------------------------------------


def test_patch_item(client: httpx.Client, user: User) -> None:
    item = create_item(user, title="Old", description="old")
    url = f"/items/{item['id']}"
    response = client.patch(url, json={}, headers=user.auth)
    assert response.status_code == 200
    assert response.json() == item
    response = client.patch(url, json={"title": "New"}, headers=user.auth)
    assert response.json() == {**item, "title": "New"}
    response = client.patch(url, json={"description": None}, headers=user.auth)
    assert response.json() == {**item, "title": "New", "description": None}
    response = client.patch(url, json={"title": "Both", "description": "d"}, headers=user.auth)
    assert response.json() == {**item, "title": "Both", "description": "d"}
    assert client.get(url).json() == {**item, "title": "Both", "description": "d"}


@pytest.mark.parametrize(
    "payload",
    [
        {"title": None},
        {"title": ""},
        {"title": "t" * 201},
        {"title": "a\u0000"},
        {"description": "a\u0000"},
        {"title": 1},
        [],
        "x",
    ],
)
def test_patch_item_invalid(client: httpx.Client, user: User, payload: Any) -> None:
    item = create_item(user, title="Keep")
    response = client.patch(f"/items/{item['id']}", json=payload, headers=user.auth)
    assert response.status_code == 422, response.text
    assert client.get(f"/items/{item['id']}").json() == item


def test_patch_item_errors_and_order(client: httpx.Client, user: User, other: User) -> None:
    theirs = create_item(other)
    url = f"/items/{theirs['id']}"
    assert client.patch(url, json={"title": "x"}).status_code == 401
    assert client.patch(url, json={"title": None}).status_code == 401  # 401 before 422
    assert client.patch("/items/abc", json={"title": "x"}).status_code == 401
    assert client.patch("/items/abc", json={}, headers=user.auth).status_code == 422
    assert (
        client.patch(url, json={"title": None}, headers=user.auth).status_code == 422
    )  # before 403
    missing = "/items/999999999"
    assert client.patch(missing, json={"title": None}, headers=user.auth).status_code == 422
    response = client.patch(missing, json={"title": "x"}, headers=user.auth)
    assert response.status_code == 404
    assert response.json() == {"detail": "Item not found"}
    response = client.patch(url, json={"title": "x"}, headers=user.auth)
    assert response.status_code == 403
    assert response.json() == {"detail": "Not enough permissions"}
    assert client.get(url).json() == theirs


# --- DELETE /items/{id} -------------------------------------------------------------------------


def test_delete_item(client: httpx.Client, user: User) -> None:
    item = create_item(user)
    url = f"/items/{item['id']}"
    response = client.delete(url, headers=user.auth)
    assert response.status_code == 204
    assert response.content == b""
    assert client.get(url).status_code == 404
    assert client.delete(url, headers=user.auth).status_code == 404


def test_delete_item_errors(client: httpx.Client, user: User, other: User) -> None:
    theirs = create_item(other)
    url = f"/items/{theirs['id']}"
    response = client.delete(url)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert client.delete("/items/abc").status_code == 401
    assert client.delete("/items/abc", headers=user.auth).status_code == 422
    assert client.delete("/items/999999999", headers=user.auth).status_code == 404
    response = client.delete(url, headers=user.auth)
    assert response.status_code == 403
    assert response.json() == {"detail": "Not enough permissions"}
    assert client.get(url).status_code == 200
