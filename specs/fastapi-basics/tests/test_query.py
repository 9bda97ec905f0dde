"""Operations 6-8: GET /query_params, GET /query_params_typed, GET /items_validated/{request_id}."""

import pytest

QUERY_PARAMS = pytest.mark.rubric("query-params")
QUERY_TYPED = pytest.mark.rubric("query-typed")
PATH_VALIDATED = pytest.mark.rubric("path-validated")


# query-params -----------------------------------------------------------------------------------
@QUERY_PARAMS
def test_query_params_default_to_zero(client, api):
    """GET /query_params without parameters must answer {"page": 0, "skip": 0}."""
    api.ok(client.get("/query_params"), {"page": 0, "skip": 0})


@QUERY_PARAMS
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"page": 3}, {"page": 3, "skip": 0}, id="page-only"),
        pytest.param({"skip": 7}, {"page": 0, "skip": 7}, id="skip-only"),
        pytest.param({"page": 2, "skip": 5}, {"page": 2, "skip": 5}, id="both"),
        pytest.param({"skip": 20, "page": 4}, {"page": 4, "skip": 20}, id="both-reversed"),
    ],
)
def test_query_params_are_echoed_as_integers(client, api, params, expected):
    """GET /query_params must echo page and skip as JSON integers, 0 for the one left out."""
    api.ok(client.get("/query_params", params=params), expected)


@QUERY_PARAMS
@pytest.mark.parametrize(
    ("params", "name"),
    [
        pytest.param({"page": "abc"}, "page", id="page-abc"),
        pytest.param({"skip": "1.5"}, "skip", id="skip-1.5"),
        pytest.param({"page": "1", "skip": "ten"}, "skip", id="skip-ten"),
    ],
)
def test_query_params_non_integer_is_422(client, api, params, name):
    """GET /query_params with a page or skip that is not an integer must answer 422 naming that parameter."""
    api.invalid(client.get("/query_params", params=params), "query", name)


# query-typed ---------------------------------------------------------------------------------------
@QUERY_TYPED
@pytest.mark.parametrize(
    "req",
    [
        pytest.param("abcde", id="5-chars"),
        pytest.param("hello-wor", id="9-chars"),
        pytest.param("abcdefghijklmno", id="15-chars"),
    ],
)
def test_query_typed_accepts_5_to_15_characters(client, api, req):
    """GET /query_params_typed?req=... must answer {"req": req} when req has 5 to 15 characters (both bounds included)."""
    api.ok(client.get("/query_params_typed", params={"req": req}), {"req": req})


@QUERY_TYPED
def test_query_typed_missing_req_is_422(client, api):
    """GET /query_params_typed without req must answer 422: req is required."""
    api.invalid(client.get("/query_params_typed"), "query", "req")


@QUERY_TYPED
@pytest.mark.parametrize(
    "req",
    [
        pytest.param("abcd", id="4-chars"),
        pytest.param("abcdefghijklmnop", id="16-chars"),
        pytest.param("", id="empty"),
    ],
)
def test_query_typed_wrong_length_is_422(client, api, req):
    """GET /query_params_typed must answer 422 when req is shorter than 5 or longer than 15 characters."""
    api.invalid(client.get("/query_params_typed", params={"req": req}), "query", "req")


# path-validated --------------------------------------------------------------------------------------
@PATH_VALIDATED
@pytest.mark.parametrize("request_id", [10, 12, 14])
def test_items_validated_accepts_10_to_14(client, api, request_id):
    """GET /items_validated/{request_id} must answer {"request_id": id} for 10 <= id < 15 (10 and 14 included)."""
    api.ok(client.get(f"/items_validated/{request_id}"), {"request_id": request_id})


@PATH_VALIDATED
@pytest.mark.parametrize("request_id", [9, 15, 0, -10, 100])
def test_items_validated_out_of_range_is_422(client, api, request_id):
    """GET /items_validated/{request_id} must answer 422 when the id is below 10 or 15 and above."""
    api.invalid(client.get(f"/items_validated/{request_id}"), "path", "request_id")


@PATH_VALIDATED
@pytest.mark.parametrize("request_id", ["abc", "12.5"])
def test_items_validated_non_integer_is_422(client, api, request_id):
    """GET /items_validated/{request_id} with an id that is not an integer must answer 422."""
    api.invalid(client.get(f"/items_validated/{request_id}"), "path", "request_id")
