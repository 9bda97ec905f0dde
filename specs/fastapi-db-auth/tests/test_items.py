"""Rows 8-13: items (create, read, update, delete, listings)."""

import pytest

from grader.testing import Mismatch, expect_equal, expect_json, expect_status

CRUD = pytest.mark.rubric("items-crud")
LISTING = pytest.mark.rubric("items-listing")


# create ---------------------------------------------------------------------------------------------
@CRUD
def test_create_item_returns_201_item_out(client, api):
    """POST /users/{user_id}/items/ must answer 201 with {id, title, description, owner_id = user_id}."""
    user = api.shared("owner")
    r = client.post(
        f"/users/{user.id}/items/",
        json={"title": "Milk", "description": "2 litres"},
        headers=user.headers,
    )
    expect_status(r, 201)
    api.expect_item_out(r, title="Milk", description="2 litres", owner_id=user.id)


@CRUD
@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"title": "No description"}, id="omitted"),
        pytest.param({"title": "No description", "description": None}, id="null"),
    ],
)
def test_create_item_without_description_stores_null(client, api, body):
    """An item created without a description (or with null) must have description null."""
    user = api.shared("owner")
    r = client.post(f"/users/{user.id}/items/", json=body, headers=user.headers)
    expect_status(r, 201)
    api.expect_item_out(r, title="No description", description=None, owner_id=user.id)


@CRUD
@pytest.mark.parametrize("length", [1, 200])
def test_create_item_title_length_bounds_accepted(client, api, length):
    """Titles of exactly 1 and exactly 200 characters must be accepted (201)."""
    user = api.shared("owner")
    r = client.post(f"/users/{user.id}/items/", json={"title": "t" * length}, headers=user.headers)
    expect_status(r, 201)
    api.expect_item_out(r, title="t" * length)


@CRUD
@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"title": ""}, id="title-empty"),
        pytest.param({"title": "t" * 201}, id="title-201-chars"),
        pytest.param({"description": "no title"}, id="title-missing"),
        pytest.param({"title": None}, id="title-null"),
        pytest.param({"title": 42}, id="title-number"),
        pytest.param({"title": "ok", "description": 42}, id="description-number"),
        pytest.param({"title": "nul\u0000title"}, id="title-nul"),
        pytest.param({"title": "ok", "description": "nul\u0000description"}, id="description-nul"),
        pytest.param(["title"], id="a-list"),
    ],
)
def test_create_item_invalid_body_is_422(client, api, body):
    """POST /users/{user_id}/items/ with an invalid body (title 1..200 chars, strings without NUL) must answer 422."""
    user = api.shared("owner")
    r = client.post(f"/users/{user.id}/items/", json=body, headers=user.headers)
    expect_status(r, 422)
    api.expect_detail(r)


@CRUD
def test_create_item_malformed_json_is_422(client, api):
    """A body that is not valid JSON must answer 422 (with a valid token)."""
    user = api.shared("owner")
    r = client.post(
        f"/users/{user.id}/items/",
        content=b'{"title": "unterminated',
        headers={**user.headers, "Content-Type": "application/json"},
    )
    expect_status(r, 422)
    api.expect_detail(r)


@CRUD
def test_create_item_without_token_is_401(client, api):
    """POST /users/{user_id}/items/ without a token must answer 401 with WWW-Authenticate: Bearer."""
    user = api.shared("owner", login=False)
    r = client.post(f"/users/{user.id}/items/", json={"title": "Milk"})
    expect_status(r, 401)
    api.expect_challenge(r, "Bearer")


@CRUD
def test_create_item_for_missing_user_is_404(client, api, missing_id):
    """Creating an item under a user id that does not exist must answer 404 {"detail": "User not found"}."""
    user = api.shared("owner")
    r = client.post(f"/users/{missing_id}/items/", json={"title": "Milk"}, headers=user.headers)
    expect_status(r, 404)
    api.expect_detail(r, "User not found")


# read -----------------------------------------------------------------------------------------------
@CRUD
def test_get_item_returns_it(client, api):
    """GET /items/{item_id} must answer 200 with the item as it was created."""
    user = api.shared("owner")
    item = api.create_item(user, title="Bread", description="rye")
    r = client.get(f"/items/{item['id']}")
    expect_status(r, 200)
    api.expect_item_out(r, id=item["id"], title="Bread", description="rye", owner_id=user.id)


@CRUD
def test_get_missing_item_is_404(client, api, missing_id):
    """GET /items/{item_id} for an id with no item must answer 404 {"detail": "Item not found"}."""
    r = client.get(f"/items/{missing_id}")
    expect_status(r, 404)
    api.expect_detail(r, "Item not found")


@CRUD
@pytest.mark.parametrize("item_id", ["abc", "1.5"])
def test_get_item_non_integer_id_is_422(client, item_id):
    """GET /items/{item_id} with an id that is not an integer must answer 422."""
    r = client.get(f"/items/{item_id}")
    expect_status(r, 422)


@CRUD
@pytest.mark.parametrize("item_id", [0, -1, 2**31, 2**63])
def test_get_item_impossible_id_is_not_an_error(client, item_id):
    """An id no item can have (0, negative, too big for the database) must answer 404 (or 422), never 500."""
    r = client.get(f"/items/{item_id}")
    expect_status(r, 404, 422)


# update ---------------------------------------------------------------------------------------------
@CRUD
def test_patch_title_keeps_description(client, api):
    """PATCH /items/{item_id} with only a title must change the title and keep the description."""
    user = api.shared("owner")
    item = api.create_item(user, title="Old", description="kept")
    r = client.patch(f"/items/{item['id']}", json={"title": "New"}, headers=user.headers)
    expect_status(r, 200)
    api.expect_item_out(r, id=item["id"], title="New", description="kept", owner_id=user.id)
    r = client.get(f"/items/{item['id']}")
    expect_status(r, 200)
    api.expect_item_out(r, title="New", description="kept")


@CRUD
def test_patch_description_to_null(client, api):
    """PATCH with {"description": null} must clear the description and keep the title."""
    user = api.shared("owner")
    item = api.create_item(user, title="Keep me", description="to clear")
    r = client.patch(f"/items/{item['id']}", json={"description": None}, headers=user.headers)
    expect_status(r, 200)
    api.expect_item_out(r, title="Keep me", description=None)
    r = client.get(f"/items/{item['id']}")
    api.expect_item_out(r, title="Keep me", description=None)


@CRUD
def test_patch_empty_object_changes_nothing(client, api):
    """PATCH with {} must answer 200 and change nothing."""
    user = api.shared("owner")
    item = api.create_item(user, title="Same", description="same")
    r = client.patch(f"/items/{item['id']}", json={}, headers=user.headers)
    expect_status(r, 200)
    api.expect_item_out(r, **item)
    r = client.get(f"/items/{item['id']}")
    api.expect_item_out(r, **item)


@CRUD
@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"title": None}, id="title-null"),
        pytest.param({"title": ""}, id="title-empty"),
        pytest.param({"title": "t" * 201}, id="title-201-chars"),
        pytest.param({"title": 7}, id="title-number"),
        pytest.param({"description": "nul\u0000"}, id="description-nul"),
        pytest.param([], id="a-list"),
    ],
)
def test_patch_invalid_body_is_422_and_changes_nothing(client, api, body):
    """PATCH /items/{item_id} with an invalid body must answer 422 and leave the item unchanged."""
    user = api.shared("owner")
    item = api.create_item(user, title="Unchanged", description="unchanged")
    r = client.patch(f"/items/{item['id']}", json=body, headers=user.headers)
    expect_status(r, 422)
    api.expect_detail(r)
    r = client.get(f"/items/{item['id']}")
    api.expect_item_out(r, **item)


@CRUD
def test_patch_malformed_json_is_422(client, api):
    """PATCH with a body that is not valid JSON must answer 422 (with a valid token)."""
    user = api.shared("owner")
    item = api.create_item(user)
    r = client.patch(
        f"/items/{item['id']}",
        content=b"{not json",
        headers={**user.headers, "Content-Type": "application/json"},
    )
    expect_status(r, 422)


@CRUD
def test_patch_missing_item_is_404(client, api, missing_id):
    """PATCH /items/{item_id} for an id with no item must answer 404."""
    user = api.shared("owner")
    r = client.patch(f"/items/{missing_id}", json={"title": "x"}, headers=user.headers)
    expect_status(r, 404)
    api.expect_detail(r)


@CRUD
def test_patch_without_token_is_401(client, api):
    """PATCH /items/{item_id} without a token must answer 401 with WWW-Authenticate: Bearer."""
    user = api.shared("owner")
    item = api.create_item(user)
    r = client.patch(f"/items/{item['id']}", json={"title": "x"})
    expect_status(r, 401)
    api.expect_challenge(r, "Bearer")


# delete ---------------------------------------------------------------------------------------------
@CRUD
def test_delete_is_204_with_empty_body_then_404(client, api):
    """DELETE /items/{item_id} must answer 204 with an empty body, and the item must then be gone (404)."""
    user = api.itemless()
    item = api.create_item(user)
    r = client.delete(f"/items/{item['id']}", headers=user.headers)
    expect_status(r, 204)
    expect_equal(r.content, b"", "DELETE /items/{item_id} body")
    r = client.get(f"/items/{item['id']}")
    expect_status(r, 404)
    r = client.get("/users/me/items/", headers=user.headers)
    expect_status(r, 200)
    expect_equal(expect_json(r), [], "GET /users/me/items/ after the delete")


@CRUD
def test_delete_twice_is_404(client, api):
    """Deleting an item that was already deleted must answer 404."""
    user = api.shared("owner")
    item = api.create_item(user)
    expect_status(client.delete(f"/items/{item['id']}", headers=user.headers), 204)
    r = client.delete(f"/items/{item['id']}", headers=user.headers)
    expect_status(r, 404)
    api.expect_detail(r)


@CRUD
def test_delete_without_token_is_401(client, api):
    """DELETE /items/{item_id} without a token must answer 401 with WWW-Authenticate: Bearer and keep the item."""
    user = api.shared("owner")
    item = api.create_item(user)
    r = client.delete(f"/items/{item['id']}")
    expect_status(r, 401)
    api.expect_challenge(r, "Bearer")
    expect_status(client.get(f"/items/{item['id']}"), 200)


# listings -------------------------------------------------------------------------------------------
@LISTING
def test_list_items_has_new_items_in_id_order(api):
    """GET /items/ must list everybody's items, ordered by id ascending."""
    a, b = api.shared("owner"), api.shared("other")
    created = [api.create_item(a, "a1"), api.create_item(b, "b1"), api.create_item(a, "a2")]
    rows = api.all_rows("/items/")
    ids = api.expect_ids_ascending(rows, "GET /items/ ids")
    by_id = {row["id"]: row for row in rows}
    for item in created:
        if item["id"] not in by_id:
            raise Mismatch(
                "GET /items/", expected=f"item {item['id']} in the list", actual=f"ids {ids[-10:]}"
            )
        expect_equal(
            by_id[item["id"]].get("owner_id"),
            item["owner_id"],
            f"GET /items/ item {item['id']} owner_id",
        )


@LISTING
@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"skip": -1}, id="skip-negative"),
        pytest.param({"limit": 0}, id="limit-0"),
        pytest.param({"limit": 101}, id="limit-101"),
        pytest.param({"skip": "abc"}, id="skip-not-int"),
    ],
)
def test_list_items_pagination_bounds_are_422(client, params):
    """GET /items/ must answer 422 when skip < 0, limit < 1, limit > 100 or they are not integers."""
    r = client.get("/items/", params=params)
    expect_status(r, 422)


@LISTING
def test_list_items_limit_and_skip(client, api):
    """GET /items/?limit=1 must return one item, and skip=1&limit=2 the 2nd and 3rd items of the list."""
    user = api.shared("owner")
    for n in range(3):
        api.create_item(user, f"item {n}")
    r = client.get("/items/", params={"limit": 1})
    expect_status(r, 200)
    expect_equal(len(expect_json(r)), 1, "GET /items/?limit=1 number of rows")
    r = client.get("/items/", params={"skip": 0, "limit": 100})
    expect_status(r, 200)
    ids = [row["id"] for row in expect_json(r)]
    r = client.get("/items/", params={"skip": 1, "limit": 2})
    expect_status(r, 200)
    expect_equal(
        [row.get("id") for row in expect_json(r)], ids[1:3], "GET /items/?skip=1&limit=2 ids"
    )


@LISTING
def test_list_items_default_page_is_100(client, api):
    """GET /items/ without parameters must return the first 100 items (skip=0, limit=100)."""
    user = api.shared("owner")
    existing = len(api.all_rows("/items/"))
    for n in range(max(0, 101 - existing)):
        api.create_item(user, f"filler {n}")
    everything = api.all_rows("/items/")
    r = client.get("/items/")
    expect_status(r, 200)
    expect_equal(
        [row.get("id") for row in expect_json(r)],
        [row["id"] for row in everything[:100]],
        "GET /items/ ids (the first 100)",
    )


@LISTING
@pytest.mark.parametrize("skip", [10**9, 2**63])
def test_list_items_skip_past_the_end(client, skip):
    """A skip past the end must answer 200 with [] (a skip too big for the database may answer 422), never 500."""
    r = client.get("/items/", params={"skip": skip})
    expect_status(r, 200, 422)
    if r.status_code == 200:
        expect_equal(expect_json(r), [], f"GET /items/?skip={skip} body")


@LISTING
def test_own_items_lists_only_the_callers_items_in_order(client, api):
    """GET /users/me/items/ must return exactly the caller's items, ordered by id ascending."""
    a, b = api.itemless(), api.shared("other")
    mine = [
        api.create_item(a, "mine 1"),
        api.create_item(b, "theirs"),
        api.create_item(a, "mine 2"),
    ]
    r = client.get("/users/me/items/", headers=a.headers)
    expect_status(r, 200)
    body = expect_json(r)
    if not isinstance(body, list):
        raise Mismatch("GET /users/me/items/ body", expected="a JSON list", actual=body)
    expect_equal(
        [row.get("id") for row in body], [mine[0]["id"], mine[2]["id"]], "GET /users/me/items/ ids"
    )
    for row in body:
        expect_equal(row.get("owner_id"), a.id, "GET /users/me/items/ owner_id")
    for item in (mine[0], mine[2]):  # passed: leave the shared itemless user without items again
        client.delete(f"/items/{item['id']}", headers=a.headers)


@LISTING
def test_own_items_of_a_new_user_is_empty(client, api):
    """GET /users/me/items/ for a user without items must answer 200 []."""
    user = api.itemless()
    r = client.get("/users/me/items/", headers=user.headers)
    expect_status(r, 200)
    expect_equal(expect_json(r), [], "GET /users/me/items/ body")


@LISTING
def test_own_items_without_token_is_401(client, api):
    """GET /users/me/items/ without a token must answer 401 with WWW-Authenticate: Bearer."""
    r = client.get("/users/me/items/")
    expect_status(r, 401)
    api.expect_challenge(r, "Bearer")
