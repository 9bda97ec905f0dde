"""Operations 9-12: POST /form, POST /files/, POST /items/, PUT /items/{item_id}."""

import pytest

from grader.testing import Mismatch

FORM = pytest.mark.rubric("form")
FILES = pytest.mark.rubric("files")
ITEM_CREATE = pytest.mark.rubric("item-create")
ITEM_UPDATE = pytest.mark.rubric("item-update")

PASSWORD = "Pa55-never-echoed-7291"  # distinctive: found anywhere in an answer means it was echoed
JSON = {"Content-Type": "application/json"}


# form ---------------------------------------------------------------------------------------------
@FORM
@pytest.mark.parametrize("username", ["alice", "Bob Smith", "zoë_42"])
def test_form_answers_the_username(client, api, username):
    """POST /form with the form fields username and password must answer exactly {"username": username}."""
    r = client.post("/form", data={"username": username, "password": PASSWORD})
    api.ok(r, {"username": username}, exact=True)


@FORM
@pytest.mark.critical("POST /form must never answer with the password")
def test_form_never_echoes_the_password(client, api):
    """POST /form must answer without the password anywhere in the answer (body or headers)."""
    r = client.post("/form", data={"username": "alice", "password": PASSWORD})
    places = [r.text] + [f"{k}: {v}" for k, v in r.headers.items()]
    leaked = [p for p in places if PASSWORD in p]
    if leaked:  # whatever the status: an error page that echoes the password leaks it too
        raise Mismatch(
            "POST /form answer",
            expected="no trace of the password",
            actual=f"the password in: {leaked[0][:300]}",
        )
    # no leak in a failed answer proves little: its status is test_form_answers_the_username's
    with api.step("send the form"):
        api.expect_success(r)


@FORM
@pytest.mark.parametrize(
    ("data", "missing"),
    [
        pytest.param({"username": "alice"}, "password", id="no-password"),
        pytest.param({"password": PASSWORD}, "username", id="no-username"),
        pytest.param({}, "username", id="empty-form"),
    ],
)
def test_form_missing_field_is_422(client, api, data, missing):
    """POST /form without username or password must answer 422 naming the missing form field."""
    api.invalid(client.post("/form", data=data), "body", missing)


@FORM
def test_form_does_not_take_query_parameters(client, api):
    """POST /form reads form fields: username and password in the query string instead must answer 422."""
    r = client.post("/form", params={"username": "alice", "password": PASSWORD})
    api.invalid(r, "body")


# files ------------------------------------------------------------------------------------------------
@FILES
@pytest.mark.parametrize(
    ("filename", "content", "kind"),
    [
        pytest.param("hello.txt", b"hello world", "text/plain", id="text"),
        pytest.param("empty.txt", b"", "text/plain", id="empty"),
        pytest.param(
            "blob.bin", bytes(range(256)) * 4, "application/octet-stream", id="binary-1024-bytes"
        ),
        pytest.param(
            "photo.jpg",
            b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00\xff\r\n" * 50,
            "image/jpeg",
            id="binary-with-crlf",
        ),
        pytest.param("big.dat", bytes(range(251)) * 800, "application/octet-stream", id="200-kb"),
    ],
)
def test_file_size_and_name(client, api, filename, content, kind):
    """POST /files/ with a multipart field "file" must answer {"file_size": <its size in bytes>, "filename": <its name as uploaded>}."""
    r = client.post("/files/", files={"file": (filename, content, kind)})
    api.ok(r, {"file_size": len(content), "filename": filename})


@FILES
def test_filename_with_spaces_is_kept(client, api):
    """POST /files/ must answer the filename exactly as uploaded, spaces and dots included."""
    r = client.post(
        "/files/", files={"file": ("my report.v2.pdf", b"%PDF-1.4\n", "application/pdf")}
    )
    api.ok(r, {"file_size": 9, "filename": "my report.v2.pdf"})


@FILES
def test_file_under_another_field_name_is_422(client, api):
    """POST /files/ without a multipart field named "file" must answer 422 naming body.file."""
    r = client.post("/files/", files={"upload": ("hello.txt", b"hello", "text/plain")})
    api.invalid(r, "body", "file")


@FILES
def test_file_without_body_is_422(client, api):
    """POST /files/ with no body at all must answer 422 naming body.file."""
    api.invalid(client.post("/files/"), "body", "file")


# item-create --------------------------------------------------------------------------------------------
FULL_ITEM = {"name": "Portal Gun", "description": "Opens portals", "price": 42.5, "tax": 3.2}


@ITEM_CREATE
def test_create_item_full(client, api):
    """POST /items/ with every Item field must answer {"item": <the same item>}."""
    api.ok(client.post("/items/", json=FULL_ITEM), {"item": FULL_ITEM})


@ITEM_CREATE
def test_create_item_fills_defaults(client, api):
    """POST /items/ with only name and price must answer the item with "description": null and "tax": null."""
    r = client.post("/items/", json={"name": "Plumbus", "price": 32.0})
    api.ok(r, {"item": {"name": "Plumbus", "description": None, "price": 32.0, "tax": None}})


@ITEM_CREATE
def test_create_item_integer_price_is_a_number(client, api):
    """POST /items/ must accept an integer price (a JSON number) and echo it as a number."""
    r = client.post("/items/", json={"name": "Meeseeks Box", "price": 10, "tax": 0})
    api.ok(r, {"item": {"name": "Meeseeks Box", "description": None, "price": 10.0, "tax": 0.0}})


@ITEM_CREATE
@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param({"price": 1.5}, ["body", "name"], id="no-name"),
        pytest.param({"name": "Plumbus"}, ["body", "price"], id="no-price"),
        pytest.param(
            {"name": "Plumbus", "price": "cheap"}, ["body", "price"], id="price-not-a-number"
        ),
        pytest.param(
            {"name": "Plumbus", "price": 1.5, "tax": "some"}, ["body", "tax"], id="tax-not-a-number"
        ),
        pytest.param({}, ["body", "name"], id="empty-object"),
    ],
)
def test_create_item_invalid_is_422(client, api, body, loc):
    """POST /items/ with a missing name or price, or a price or tax that is not a number, must answer 422 naming the field."""
    api.invalid(client.post("/items/", json=body), *loc)


@ITEM_CREATE
def test_create_item_without_body_is_422(client, api):
    """POST /items/ without a body must answer 422: the Item is required."""
    api.invalid(client.post("/items/"), "body")


@ITEM_CREATE
def test_create_item_malformed_json_is_422(client, api):
    """POST /items/ with a body that is not valid JSON must answer 422 (FastAPI's json_invalid error)."""
    r = client.post("/items/", content=b'{"name": "Plumbus", "price": ', headers=JSON)
    api.invalid(r, "body")


@ITEM_CREATE
@pytest.mark.parametrize(
    ("raw", "field"),
    [
        pytest.param(b'{"name": "Plumbus", "price": 1e999}', "price", id="price-1e999"),
        pytest.param(b'{"name": "Plumbus", "price": -1e999}', "price", id="price-minus-1e999"),
        pytest.param(b'{"name": "Plumbus", "price": 1.5, "tax": 1e999}', "tax", id="tax-1e999"),
    ],
)
def test_create_item_infinite_number_is_422(client, api, raw, field):
    """POST /items/ with a number too large for a float (1e999, read as infinity) must answer 422, never 500."""
    api.invalid(client.post("/items/", content=raw, headers=JSON), "body", field)


# item-update ---------------------------------------------------------------------------------------------
FULL_USER = {"username": "rick", "full_name": "Rick Sanchez"}


@ITEM_UPDATE
@pytest.mark.parametrize("item_id", [5, 0, 1234])
def test_update_item_echoes_everything(client, api, item_id):
    """PUT /items/{item_id} with {"item", "user", "importance"} must answer them with the item_id as an integer."""
    body = {"item": FULL_ITEM, "user": FULL_USER, "importance": 3}
    r = client.put(f"/items/{item_id}", json=body)
    api.ok(r, {"item_id": item_id, "item": FULL_ITEM, "user": FULL_USER, "importance": 3})


@ITEM_UPDATE
def test_update_item_fills_defaults(client, api):
    """PUT /items/{item_id} must fill the defaults: description, tax and full_name null when absent."""
    body = {
        "item": {"name": "Plumbus", "price": 32},
        "user": {"username": "morty"},
        "importance": 1,
    }
    r = client.put("/items/7", json=body)
    api.ok(
        r,
        {
            "item_id": 7,
            "item": {"name": "Plumbus", "description": None, "price": 32.0, "tax": None},
            "user": {"username": "morty", "full_name": None},
            "importance": 1,
        },
    )


@ITEM_UPDATE
@pytest.mark.parametrize("missing", ["item", "user", "importance"])
def test_update_item_missing_key_is_422(client, api, missing):
    """PUT /items/{item_id} must answer 422 when item, user or importance is missing from the JSON body."""
    body = {"item": FULL_ITEM, "user": FULL_USER, "importance": 3}
    del body[missing]
    api.invalid(client.put("/items/5", json=body), "body", missing)


@ITEM_UPDATE
@pytest.mark.parametrize("importance", ["high", 2.5, None])
def test_update_item_importance_not_an_integer_is_422(client, api, importance):
    """PUT /items/{item_id} must answer 422 when importance is not an integer."""
    body = {"item": FULL_ITEM, "user": FULL_USER, "importance": importance}
    api.invalid(client.put("/items/5", json=body), "body", "importance")


@ITEM_UPDATE
@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param(
            {"item": {"name": "Plumbus"}, "user": FULL_USER, "importance": 1},
            ["body", "item", "price"],
            id="item-without-price",
        ),
        pytest.param(
            {"item": FULL_ITEM, "user": {"full_name": "Rick Sanchez"}, "importance": 1},
            ["body", "user", "username"],
            id="user-without-username",
        ),
    ],
)
def test_update_item_invalid_nested_model_is_422(client, api, body, loc):
    """PUT /items/{item_id} must validate the nested Item and User: a missing required field answers 422."""
    api.invalid(client.put("/items/5", json=body), *loc)


@ITEM_UPDATE
def test_update_item_non_integer_id_is_422(client, api):
    """PUT /items/{item_id} with an item_id that is not an integer must answer 422 naming the path parameter."""
    body = {"item": FULL_ITEM, "user": FULL_USER, "importance": 3}
    api.invalid(client.put("/items/abc", json=body), "path", "item_id")


@ITEM_UPDATE
def test_update_item_without_body_is_422(client, api):
    """PUT /items/{item_id} without a body must answer 422."""
    api.invalid(client.put("/items/5"), "body")
