"""Helpers of the fastapi-basics contract suite.

The grader's plugin (grader.checks.contract) provides `target` (the app's base URL and the env it
was started with) and `client` (an httpx.Client whose exchanges are recorded for the report). This
file adds `api`: the expectations the tests share, each raising `grader.testing.Mismatch` so a
failure shows "expected vs actual". Test modules cannot import this conftest (the grader imports
the tests with importlib), so everything is reached through the fixture: `api.ok(...)`,
`api.invalid(...)`, `api.error(...)`, `api.basic(...)`, `api.expect_challenge(...)`, `api.env[...]`.
A critical test that needs the route to work first (the right credentials let in) checks that in
`api.step(...)` (grader.testing): when it fails, the test is "not checked" and costs its share, never
its whole item — a route that refuses everyone shows no hole.

The app has no database and no state: every test is independent and sends the same requests on
every run (only the env's secrets differ from run to run).
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from grader.testing import Mismatch, expect_json, expect_status, step


def _where(response: httpx.Response) -> str:
    return f"{response.request.method} {response.request.url.path}"


def matches(expected: Any, actual: Any, *, exact: bool = False) -> bool:
    """`actual` is the JSON value `expected` describes.

    Objects: every expected property is present with a matching value; extra properties are
    allowed unless `exact` (the contract lets responses carry extra, harmless properties). Lists:
    same length, items in order. Integers must be JSON integers (5, not 5.0 or "5"); a float in
    `expected` is a JSON number (42 and 42.0 both match 42.0). Booleans are never numbers.
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or (exact and set(actual) != set(expected)):
            return False
        return all(k in actual and matches(v, actual[k], exact=exact) for k, v in expected.items())
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(matches(e, a, exact=exact) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, bool) or expected is None:
        return actual is expected
    if isinstance(expected, int):
        return isinstance(actual, int) and not isinstance(actual, bool) and actual == expected
    if isinstance(expected, float):
        return (
            isinstance(actual, int | float) and not isinstance(actual, bool) and actual == expected
        )
    return type(actual) is type(expected) and actual == expected


def ok(response: httpx.Response, expected: Any, *, exact: bool = False) -> Any:
    """200 with a JSON body matching `expected` (see `matches`); returns the body."""
    expect_status(response, 200)
    body = expect_json(response)
    if not matches(expected, body, exact=exact):
        what = f"{_where(response)} body" + (" (exactly this, no other property)" if exact else "")
        raise Mismatch(what, expected=expected, actual=body)
    return body


def _same_loc(part: Any, want: Any) -> bool:
    if isinstance(part, str) and isinstance(want, str):
        return part.lower() == want.lower()  # header names: "x-token" or "X-Token"
    return bool(part == want)


def invalid(response: httpx.Response, *loc: str | int) -> list[Any]:
    """422 with FastAPI's default validation body, naming `loc` (a prefix of some error's `loc`).

    `{"detail": [{"type": ..., "loc": [...], "msg": ..., "input": ...}, ...]}`; `loc` is e.g.
    ("path", "item_id"), ("query", "req"), ("body", "username") or ("header", "x-token").
    Returns the list of errors.
    """
    expect_status(response, 422)
    body = expect_json(response)
    where = f"{_where(response)} 422 body"
    shape = '{"detail": [{"type": ..., "loc": [...], "msg": ...}, ...]} (FastAPI\'s default)'
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, list) or not detail:
        raise Mismatch(where, expected=shape, actual=body)
    for error in detail:
        if not (
            isinstance(error, dict)
            and isinstance(error.get("loc"), list)
            and isinstance(error.get("msg"), str)
            and isinstance(error.get("type"), str)
        ):
            raise Mismatch(where, expected=shape, actual=body)
    if loc:
        want = list(loc)
        if not any(
            len(e["loc"]) >= len(want)
            and all(_same_loc(p, w) for p, w in zip(e["loc"], want, strict=False))
            for e in detail
        ):
            raise Mismatch(
                f"{where}: the error's loc",
                expected=f"an error with loc {want}",
                actual=f"locs {[e['loc'] for e in detail]}",
            )
    return detail


def error(response: httpx.Response, status: int, detail: str) -> None:
    """`status` with the JSON body `{"detail": detail}` (the detail exact; other properties allowed)."""
    expect_status(response, status)
    body = expect_json(response)
    if not isinstance(body, dict) or body.get("detail") != detail:
        raise Mismatch(f"{_where(response)} body", expected={"detail": detail}, actual=body)


def basic(username: str, password: str) -> dict[str, str]:
    """An `Authorization: Basic base64(username:password)` header."""
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def expect_challenge(response: httpx.Response) -> None:
    """A 401 answer carries `WWW-Authenticate` starting with `Basic` (e.g. `Basic realm="x"`)."""
    value = response.headers.get("www-authenticate")
    first = value.split(None, 1)[0] if value and value.strip() else ""
    if first.lower() != "basic":
        raise Mismatch(
            f"{_where(response)} header WWW-Authenticate",
            expected="Basic",
            actual=value if value is not None else "header missing",
        )


def expect_401(response: httpx.Response) -> None:
    """401 with `WWW-Authenticate: Basic` (the detail text is free)."""
    expect_status(response, 401)
    expect_challenge(response)


def expect_success(response: httpx.Response) -> None:
    """Any 2xx (the exact status is other tests' business)."""
    if not 200 <= response.status_code < 300:
        raise Mismatch(
            f"{_where(response)} status",
            expected="a success (2xx)",
            actual=f"status {response.status_code}, body {response.text[:200]!r}",
        )


def expect_refused(response: httpx.Response, case: str) -> None:
    """The request was not let in: any answer but a success (the exact status and detail are
    checked by other tests; a critical test fails only on the hole itself)."""
    if 200 <= response.status_code < 300:
        raise Mismatch(
            f"{_where(response)} with {case}",
            expected="refused",
            actual=f"let in: status {response.status_code}, body {response.text[:200]!r}",
        )


class Api:
    ok = staticmethod(ok)
    invalid = staticmethod(invalid)
    error = staticmethod(error)
    matches = staticmethod(matches)
    basic = staticmethod(basic)
    expect_challenge = staticmethod(expect_challenge)
    expect_401 = staticmethod(expect_401)
    expect_refused = staticmethod(expect_refused)
    expect_success = staticmethod(expect_success)
    step = staticmethod(step)

    def __init__(self, target: Any) -> None:
        self.env: dict[str, str] = target.env


@pytest.fixture
def api(target: Any) -> Api:
    return Api(target)
