"""Operations 2-5: GET /items/{item_id}, GET /requests/current, GET /requests/{request_id},
GET /requests/type/{request_type}."""

import pytest

PATH_PARAMS = pytest.mark.rubric("path-params")
REQUEST_ROUTES = pytest.mark.rubric("request-routes")
REQUEST_TYPE = pytest.mark.rubric("request-type")


# path-params ------------------------------------------------------------------------------------
@PATH_PARAMS
@pytest.mark.parametrize("item_id", [1, 42, 0, -7, 123456789])
def test_item_id_is_echoed_as_an_integer(client, api, item_id):
    """GET /items/{item_id} must answer 200 {"item_id": <the id as a JSON integer>}."""
    api.ok(client.get(f"/items/{item_id}"), {"item_id": item_id})


@PATH_PARAMS
@pytest.mark.parametrize("item_id", ["abc", "1.5", "12abc", "true"])
def test_non_integer_item_id_is_422(client, api, item_id):
    """GET /items/{item_id} with an id that is not an integer must answer 422 naming the path parameter item_id."""
    api.invalid(client.get(f"/items/{item_id}"), "path", "item_id")


# request-routes -------------------------------------------------------------------------------------
@REQUEST_ROUTES
def test_requests_current_is_its_own_route(client, api):
    """GET /requests/current must answer {"request": "current item"}: declare it before /requests/{request_id}."""
    api.ok(client.get("/requests/current"), {"request": "current item"})


@REQUEST_ROUTES
@pytest.mark.parametrize("request_id", ["alpha-14", "hello", "currently", "Current"])
def test_request_id_is_echoed(client, api, request_id):
    """GET /requests/{request_id} must answer {"request": "<request_id exactly as given>"}."""
    api.ok(client.get(f"/requests/{request_id}"), {"request": request_id})


@REQUEST_ROUTES
@pytest.mark.parametrize("request_id", ["42", "007", "-3"])
def test_numeric_request_id_stays_a_string(client, api, request_id):
    """GET /requests/42 must answer {"request": "42"}: the id is a string as given, even when it looks like a number."""
    api.ok(client.get(f"/requests/{request_id}"), {"request": request_id})


# request-type -----------------------------------------------------------------------------------------
@REQUEST_TYPE
@pytest.mark.parametrize("value", ["service", "new_feature"])
def test_request_type_accepts_the_enum_values(client, api, value):
    """GET /requests/type/{request_type} must answer {"request_type": value} for service and new_feature."""
    api.ok(client.get(f"/requests/type/{value}"), {"request_type": value})


@REQUEST_TYPE
@pytest.mark.parametrize("value", ["other", "Service", "SERVICE", "new-feature", "services", "1"])
def test_request_type_outside_the_enum_is_422(client, api, value):
    """GET /requests/type/{request_type} with a value other than service or new_feature must answer 422."""
    api.invalid(client.get(f"/requests/type/{value}"), "path", "request_type")
