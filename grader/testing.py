"""What an assignment's contract tests import: expectations that report "expected vs actual".

A failed `expect_*` raises `Mismatch`; the grader shows its `expected`/`actual` and the last
request the test sent. Plain `assert` works too (the message is shown as it is).
"""

from __future__ import annotations

import json
from typing import Any

import httpx


class Mismatch(AssertionError):
    def __init__(self, what: str, *, expected: Any, actual: Any) -> None:
        self.what = what
        self.expected = _show(expected)
        self.actual = _show(actual)
        super().__init__(f"{what}: expected {self.expected}, got {self.actual}")


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=False)
    except (TypeError, ValueError):
        return repr(value)


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:500]


def expect_status(response: httpx.Response, *codes: int) -> None:
    if response.status_code not in codes:
        want = " or ".join(str(c) for c in codes)
        raise Mismatch(
            f"{response.request.method} {response.request.url.path} status",
            expected=f"status {want}",
            actual=f"status {response.status_code}, "
            + (f"body {_show(_body(response))}" if response.content else "empty body"),
        )


def expect_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise Mismatch(
            f"{response.request.method} {response.request.url.path} body",
            expected="a JSON body",
            actual=repr(response.text[:300]),
        ) from None


def expect_equal(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        raise Mismatch(what, expected=expected, actual=actual)


def expect_header(response: httpx.Response, name: str, expected: str) -> None:
    value = response.headers.get(name)
    if value is None or value.lower() != expected.lower():
        raise Mismatch(
            f"{response.request.method} {response.request.url.path} header {name}",
            expected=expected,
            actual=value if value is not None else "header missing",
        )
