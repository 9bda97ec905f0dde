"""Ownership (403) and the order of checks on protected routes: 401, then 422, then 404, then 403."""

import pytest

from grader.testing import Mismatch, expect_equal, expect_json, expect_status

OWNERSHIP = pytest.mark.rubric("items-ownership")
ORDER = pytest.mark.rubric("check-order")


# ownership ------------------------------------------------------------------------------------------
@OWNERSHIP
def test_cannot_create_items_for_another_user(client, api):
    """Creating an item under another user's id must answer 403 {"detail": "Not enough permissions"} and create nothing."""
    owner, intruder = api.itemless(), api.shared("other")
    r = client.post(
        f"/users/{owner.id}/items/", json={"title": "planted"}, headers=intruder.headers
    )
    expect_status(r, 403)
    api.expect_detail(r, "Not enough permissions")
    r = client.get("/users/me/items/", headers=owner.headers)
    expect_status(r, 200)
    expect_equal(expect_json(r), [], "the owner's items after the refused request")


@OWNERSHIP
def test_cannot_patch_another_users_item(client, api):
    """PATCH of another user's item must answer 403 and leave the item unchanged."""
    owner, intruder = api.shared("owner"), api.shared("other")
    item = api.create_item(owner, title="Mine", description="mine")
    r = client.patch(f"/items/{item['id']}", json={"title": "Stolen"}, headers=intruder.headers)
    expect_status(r, 403)
    api.expect_detail(r)
    api.expect_item_out(client.get(f"/items/{item['id']}"), **item)


@OWNERSHIP
def test_cannot_delete_another_users_item(client, api):
    """DELETE of another user's item must answer 403 and keep the item."""
    owner, intruder = api.shared("owner"), api.shared("other")
    item = api.create_item(owner)
    r = client.delete(f"/items/{item['id']}", headers=intruder.headers)
    expect_status(r, 403)
    api.expect_detail(r)
    r = client.get(f"/items/{item['id']}")
    expect_status(r, 200)


@OWNERSHIP
@pytest.mark.critical("another user must not create under, change or delete the owner's items")
def test_other_users_cannot_touch_the_owners_items(client, api):
    """Another user's attempts to create an item under the owner's id, change the owner's item and delete it must all be refused, and the item must stay as it was."""
    owner, intruder = api.shared("owner"), api.shared("other")  # steps: register, log in
    item = api.create_item(owner, title="Mine", description="mine")
    path = f"/items/{item['id']}"
    api.expect_refused(
        client.post(
            f"/users/{owner.id}/items/", json={"title": "planted"}, headers=intruder.headers
        ),
        "another user's token",
    )
    api.expect_refused(
        client.patch(path, json={"title": "Stolen"}, headers=intruder.headers),
        "another user's token",
    )
    api.expect_refused(client.delete(path, headers=intruder.headers), "another user's token")
    r = client.get(path)
    if r.status_code == 404:
        raise Mismatch(
            f"GET {path} after the refused DELETE",
            expected="the item, still there",
            actual="404: deleted",
        )
    if r.status_code == 200 and isinstance(body := r.json(), dict) and body.get("title") != "Mine":
        raise Mismatch(f"GET {path} after the refused PATCH", expected=item, actual=body)


@OWNERSHIP
def test_owner_can_patch_and_delete_after_refusals(client, api):
    """After another user was refused, the owner can still PATCH (200) and DELETE (204) the item."""
    owner, intruder = api.shared("owner"), api.shared("other")
    item = api.create_item(owner)
    client.patch(f"/items/{item['id']}", json={"title": "Stolen"}, headers=intruder.headers)
    r = client.patch(f"/items/{item['id']}", json={"title": "Still mine"}, headers=owner.headers)
    expect_status(r, 200)
    api.expect_item_out(r, title="Still mine", owner_id=owner.id)
    expect_status(client.delete(f"/items/{item['id']}", headers=owner.headers), 204)


# order of checks ------------------------------------------------------------------------------------
# Each case names: is a valid token sent, is the body valid, which id is addressed.
# "missing": no such row; "other": a row that belongs to someone else; "abc": not an integer.
INVALID_ITEM = {"title": ""}
VALID_ITEM = {"title": "Valid"}


def _setup(api):
    caller, other = api.shared("owner"), api.shared("other")
    other_item = api.create_item(other)
    return caller, other, other_item


CREATE_CASES = [
    pytest.param(False, INVALID_ITEM, "missing", 401, id="no-token+invalid-body+missing-user->401"),
    pytest.param(False, VALID_ITEM, "abc", 401, id="no-token+non-integer-id->401"),
    pytest.param(True, INVALID_ITEM, "missing", 422, id="token+invalid-body+missing-user->422"),
    pytest.param(True, INVALID_ITEM, "other", 422, id="token+invalid-body+other-user->422"),
    pytest.param(True, VALID_ITEM, "missing", 404, id="token+missing-user->404"),
    pytest.param(True, VALID_ITEM, "other", 403, id="token+other-user->403"),
]


@ORDER
@pytest.mark.parametrize(("with_token", "body", "target_id", "status"), CREATE_CASES)
def test_create_item_check_order(client, api, missing_id, with_token, body, target_id, status):
    """POST /users/{user_id}/items/ must check authentication (401), then the input (422), then that the user exists (404), then ownership (403)."""
    caller, other, _ = _setup(api)
    user_id = {"missing": missing_id, "other": other.id, "abc": "abc"}[target_id]
    headers = caller.headers if with_token else {}
    r = client.post(f"/users/{user_id}/items/", json=body, headers=headers)
    expect_status(r, status)


PATCH_CASES = [
    pytest.param(False, INVALID_ITEM, "missing", 401, id="no-token+invalid-body+missing-item->401"),
    pytest.param(False, VALID_ITEM, "abc", 401, id="no-token+non-integer-id->401"),
    pytest.param(False, VALID_ITEM, "other", 401, id="no-token+other-item->401"),
    pytest.param(True, INVALID_ITEM, "missing", 422, id="token+invalid-body+missing-item->422"),
    pytest.param(True, INVALID_ITEM, "other", 422, id="token+invalid-body+other-item->422"),
    pytest.param(True, VALID_ITEM, "missing", 404, id="token+missing-item->404"),
    pytest.param(True, VALID_ITEM, "other", 403, id="token+other-item->403"),
]


@ORDER
@pytest.mark.parametrize(("with_token", "body", "target_id", "status"), PATCH_CASES)
def test_patch_item_check_order(client, api, missing_id, with_token, body, target_id, status):
    """PATCH /items/{item_id} must check authentication (401), then the input (422), then that the item exists (404), then ownership (403)."""
    caller, _, other_item = _setup(api)
    item_id = {"missing": missing_id, "other": other_item["id"], "abc": "abc"}[target_id]
    headers = caller.headers if with_token else {}
    r = client.patch(f"/items/{item_id}", json=body, headers=headers)
    expect_status(r, status)


DELETE_CASES = [
    pytest.param(False, "abc", 401, id="no-token+non-integer-id->401"),
    pytest.param(False, "missing", 401, id="no-token+missing-item->401"),
    pytest.param(True, "abc", 422, id="token+non-integer-id->422"),
    pytest.param(True, "missing", 404, id="token+missing-item->404"),
    pytest.param(True, "other", 403, id="token+other-item->403"),
]


@ORDER
@pytest.mark.parametrize(("with_token", "target_id", "status"), DELETE_CASES)
def test_delete_item_check_order(client, api, missing_id, with_token, target_id, status):
    """DELETE /items/{item_id} must check authentication (401), then the input (422), then that the item exists (404), then ownership (403)."""
    caller, _, other_item = _setup(api)
    item_id = {"missing": missing_id, "other": other_item["id"], "abc": "abc"}[target_id]
    headers = caller.headers if with_token else {}
    r = client.delete(f"/items/{item_id}", headers=headers)
    expect_status(r, status)
