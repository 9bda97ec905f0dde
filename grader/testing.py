"""What an assignment's contract tests import: expectations that report "expected vs actual",
and steps.

A failed `expect_*` raises `Mismatch`; the grader shows its `expected`/`actual` and the last
request the test sent. Plain `assert` works too (the message is shown as it is).

A step is what a test needs before its own check (register a user, log in, create an item):

    with step("log in"):
        token = api.login(email, password)

(or `@step("log in")` on a helper). An expectation that fails inside it, or a request without an
answer, raises `StepFailed`: the grader reports the test "not checked: could not log in (POST
/login answered 404)". It still costs the test's share of its item, never more — a failed step
shows no security hole, so it never zeroes an item — and the report lists it under that root
cause, not as a failure of what the test checks. Steps nest; the innermost failing step names the
cause, since it is the one whose request failed ("log in" rather than an enclosing "register two
users and create an item"). A test whose subject is the step itself (a login test) checks its
request outside any step.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx

from grader.core import Exchange

# The exchanges the running contract test sent, in order (grader.checks.contract appends each
# and clears the list between tests; contract tests run one at a time), so a failed step can
# name its own last request.
journal: list[Exchange] = []


class Mismatch(AssertionError):
    def __init__(self, what: str, *, expected: Any, actual: Any) -> None:
        self.what = what
        self.expected = _show(expected)
        self.actual = _show(actual)
        super().__init__(f"{what}: expected {self.expected}, got {self.actual}")


class StepFailed(Exception):
    """A step before the test's own check failed: the test is not checked.

    Not an AssertionError on purpose: a critical test whose step fails shows no hole.
    `exchange` is the request the step judged (None: the test sent none)."""

    def __init__(self, step: str, cause: BaseException, exchange: Exchange | None) -> None:
        self.step, self.cause, self.exchange = step, cause, exchange
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        """E.g. "could not log in (POST /login answered 404)"."""
        ex = self.exchange
        if ex is None:
            cause = self.cause
            why = (
                f"{cause.what}: expected {cause.expected}"
                if isinstance(cause, Mismatch)
                else str(cause)
            )
            why = why.strip() or type(cause).__name__
            return f"could not {self.step} ({why if len(why) <= 160 else why[:159] + '…'})"
        request = f"{ex.method} {urlsplit(ex.url).path or '/'}"
        if ex.status is None:
            return f"could not {self.step} ({request} got no answer)"
        if 200 <= ex.status < 300:
            return f"could not {self.step} ({request} answered {ex.status}, not with what the contract says)"
        return f"could not {self.step} ({request} answered {ex.status})"


@contextmanager
def step(name: str) -> Iterator[None]:
    """A step the test needs before its own check, named as a student says it ("log in"): a failed
    expectation or a request without an answer inside it raises `StepFailed`. Also a decorator.

    The request it names is the last one sent inside it; a step that sent none judges an answer
    the test already has (sent before the step, e.g. to check it for leaks first): the test's last."""
    start = len(journal)
    try:
        yield
    except StepFailed:
        raise  # an inner step failed: it names the cause
    except (AssertionError, httpx.HTTPError) as exc:
        sent = journal[start:] or journal[-1:]
        raise StepFailed(name, exc, sent[-1] if sent else None) from exc


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
